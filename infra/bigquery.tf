# BigQuery external tables over the lake's Parquet objects: cross-sectional SQL over every
# symbol without loading anything (each query reads the objects it needs). The globs follow
# barlake.core.layout: raw daily/<KEY>.parquet, derived weekly/ and monthly/. Every object
# carries a `symbol` column, so the flat (Hive-free) prefixes need no partitioning.
resource "google_bigquery_dataset" "lake" {
  # checkov:skip=CKV_GCP_81: Google-managed encryption; the dataset holds only external table definitions (the data stays in the buckets)
  dataset_id                 = var.bigquery_dataset
  location                   = var.region
  description                = "barlake: external tables over the Parquet objects in the raw and derived buckets."
  delete_contents_on_destroy = false
  depends_on                 = [google_project_service.api]
}

locals {
  bigquery_tables = {
    daily   = "gs://${google_storage_bucket.raw.name}/daily/*.parquet"
    weekly  = "gs://${google_storage_bucket.derived.name}/weekly/*.parquet"
    monthly = "gs://${google_storage_bucket.derived.name}/monthly/*.parquet"
  }
}

resource "google_bigquery_table" "bars" {
  # checkov:skip=CKV_GCP_80: external tables store no data in BigQuery; the Parquet objects are encrypted in their buckets
  for_each            = local.bigquery_tables
  dataset_id          = google_bigquery_dataset.lake.dataset_id
  table_id            = each.key
  description         = "${each.key} bars (external, Parquet): ${each.value}"
  deletion_protection = true

  external_data_configuration {
    source_format = "PARQUET"
    autodetect    = true
    source_uris   = [each.value]
  }
}
