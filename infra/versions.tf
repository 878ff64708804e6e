# Barlake infrastructure: every resource the lake needs, one file per concern.
# State lives in a GCS bucket (backend.tf); `terraform init -backend=false` for offline checks.
terraform {
  # 1.9: variable validations may refer to other variables (cache backend ↔ Upstash URL).
  required_version = ">= 1.9"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.14, < 8.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
  # Every resource is labelled, so the bill and the console can be filtered by "app=barlake".
  default_labels = var.labels
}
