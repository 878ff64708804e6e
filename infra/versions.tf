# Barlake infrastructure. The resources (buckets, topics, functions, scheduler, Firestore,
# IAM, BigQuery) are added with the Terraform issue, once the function entry points and their
# environment variables exist, so that every name matches the code's settings.
terraform {
  required_version = ">= 1.6"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0"
    }
  }
}
