# BigLake tables over the cross-sectional panel (barlake.core.panel): panel/daily|weekly|monthly/
# year=YYYY/bars.parquet in the derived bucket, Hive-partitioned by year, sorted by (date,
# symbol) with row groups of whole dates. A BigQuery connection reads the bucket with its own
# service account, so readers need BigQuery roles only (no bucket grant), and BigQuery caches
# the files' metadata (listing, footers, statistics): a query filtered on `year` and `date`
# opens one file and skips every row group of other dates. The per-symbol external tables
# (bigquery.tf) stay for single-symbol reads.

resource "google_bigquery_connection" "lake" {
  connection_id = "barlake-lake"
  location      = var.region
  friendly_name = "barlake lake"
  description   = "BigLake: BigQuery reads the panel in the derived bucket with this connection's service account."
  cloud_resource {}
  depends_on = [google_project_service.api]
}

# The connection's service account reads the derived bucket (objects and their listing).
resource "google_storage_bucket_iam_member" "biglake_derived" {
  bucket = google_storage_bucket.derived.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_bigquery_connection.lake.cloud_resource[0].service_account_id}"
}

locals {
  panel_tables = {
    panel_daily   = "daily"
    panel_weekly  = "weekly"
    panel_monthly = "monthly"
  }
}

resource "google_bigquery_table" "panel" {
  # checkov:skip=CKV_GCP_80: BigLake tables store no data in BigQuery; the Parquet objects are encrypted in their bucket
  for_each            = local.panel_tables
  dataset_id          = google_bigquery_dataset.lake.dataset_id
  table_id            = each.key
  description         = "Cross-sectional ${each.value} bars of every symbol (BigLake, Hive-partitioned by year; filter on year and date)."
  deletion_protection = true
  # Metadata cached for at most this long: the panel is rebuilt once per run, and the cache
  # refreshes itself (AUTOMATIC) within this interval of a rebuild.
  max_staleness = "0-0 0 ${var.biglake_max_staleness_hours}:0:0"

  external_data_configuration {
    source_format       = "PARQUET"
    autodetect          = true
    connection_id       = google_bigquery_connection.lake.name
    metadata_cache_mode = "AUTOMATIC"
    source_uris         = ["gs://${google_storage_bucket.derived.name}/panel/${each.value}/*"]
    hive_partitioning_options {
      mode                     = "CUSTOM"
      source_uri_prefix        = "gs://${google_storage_bucket.derived.name}/panel/${each.value}/{year:INTEGER}"
      require_partition_filter = false
    }
  }

  depends_on = [google_storage_bucket_iam_member.biglake_derived]
}
