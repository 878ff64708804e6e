variable "project_id" {
  description = "Google Cloud project that hosts the lake."
  type        = string
}

variable "region" {
  description = "Region of the buckets, functions and scheduler."
  type        = string
  default     = "us-central1"
}
