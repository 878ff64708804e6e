output "api_url" {
  description = "HTTPS URL of the API function (private unless api_public)."
  value       = google_cloudfunctions2_function.fn["api"].url
}

output "buckets" {
  description = "Raw (daily bars; finalize triggers), derived (weekly, monthly, profiles) and function-source buckets."
  value = {
    raw     = google_storage_bucket.raw.name
    derived = google_storage_bucket.derived.name
    sources = google_storage_bucket.sources.name
  }
}

output "topics" {
  description = "Pub/Sub topics: ingest-requests (scheduler, backfill), ingest-batches, dead-letter."
  value = {
    ingest_requests = google_pubsub_topic.ingest_requests.name
    ingest_batches  = google_pubsub_topic.ingest_batches.name
    dead_letter     = google_pubsub_topic.dead_letter.name
  }
}

output "dead_letter_subscription" {
  description = "Pull subscription holding dead letters for inspection and replay."
  value       = google_pubsub_subscription.dead_letter_inspect.name
}

output "bigquery_tables" {
  description = "External tables over the Parquet objects, as project.dataset.table."
  value       = { for k, t in google_bigquery_table.bars : k => "${var.project_id}.${t.dataset_id}.${t.table_id}" }
}

output "service_accounts" {
  description = "Runtime service account of each function."
  value       = { for k, sa in google_service_account.fn : k => sa.email }
}

output "upstash_token_secret" {
  description = "Secret Manager secret for the Upstash token: add its value with `gcloud secrets versions add`."
  value       = google_secret_manager_secret.upstash_token.secret_id
}

output "backfill_env" {
  description = "Environment for `barlake backfill` / `barlake status` against this deployment."
  value = join(" ", [
    "BARLAKE_STORAGE=gcs", "BARLAKE_EVENTS=pubsub", "BARLAKE_STATE=firestore",
    "BARLAKE_PROJECT=${var.project_id}",
    "BARLAKE_FIRESTORE_DATABASE=${google_firestore_database.state.name}",
    "BARLAKE_RAW_BUCKET=${google_storage_bucket.raw.name}",
    "BARLAKE_DERIVED_BUCKET=${google_storage_bucket.derived.name}",
  ])
}

output "panel_tables" {
  description = "BigLake tables over the cross-sectional panel (filter on year and date)."
  value       = { for k, t in google_bigquery_table.panel : k => "${var.project_id}.${t.dataset_id}.${t.table_id}" }
}
