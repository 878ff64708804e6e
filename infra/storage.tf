# Buckets. Raw holds one daily Parquet object per symbol (daily/<KEY>.parquet) and is the only
# bucket with finalize triggers; derived holds what is rebuilt from raw (weekly/, monthly/,
# profiles/), so no function can re-trigger itself. A third bucket holds function sources.
locals {
  raw_bucket     = var.raw_bucket_name != "" ? var.raw_bucket_name : "${var.project_id}-barlake-raw"
  derived_bucket = var.derived_bucket_name != "" ? var.derived_bucket_name : "${var.project_id}-barlake-derived"
  source_bucket  = "${var.project_id}-barlake-sources"
}

resource "google_storage_bucket" "raw" {
  # checkov:skip=CKV_GCP_62: access logs go to Cloud Audit Logs (Data Access logs for storage), the recommended replacement for legacy usage-log buckets
  name                        = local.raw_bucket
  location                    = var.region
  storage_class               = "STANDARD" # rewritten daily: colder classes charge early deletion
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  # History of every daily object: a bad restatement or a bad deploy can be rolled back to an
  # earlier generation. Versions replace soft delete here (keeping both would pay twice).
  versioning {
    enabled = true
  }
  soft_delete_policy {
    retention_duration_seconds = 0
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.raw_noncurrent_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
  lifecycle_rule {
    condition {
      num_newer_versions = var.raw_noncurrent_versions
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_project_service.api]
}

resource "google_storage_bucket" "derived" {
  # checkov:skip=CKV_GCP_62: access logs go to Cloud Audit Logs (Data Access logs for storage), the recommended replacement for legacy usage-log buckets
  # checkov:skip=CKV_GCP_78: derived objects are rebuilt from raw by the weekly/profile functions; versioning would only double the storage of objects rewritten daily
  name                        = local.derived_bucket
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  # Rebuildable: a short soft-delete window covers an accidental delete without a rebuild.
  soft_delete_policy {
    retention_duration_seconds = 604800
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_project_service.api]
}

resource "google_storage_bucket" "sources" {
  # checkov:skip=CKV_GCP_62: access logs go to Cloud Audit Logs (Data Access logs for storage), the recommended replacement for legacy usage-log buckets
  name                        = local.source_bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true # only build inputs: recreated by the next apply

  versioning {
    enabled = true
  }
  # Archive names carry their hash: a replaced version is never read again.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.api]
}
