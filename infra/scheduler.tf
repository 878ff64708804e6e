# Cloud Scheduler: each job publishes a scheduled run request to ingest-requests. The payload is
# barlake.messages.IngestRequest (version 1, kind "scheduled", no run id: dispatch names the run
# after the UTC day, so a repeated tick is the same run). Pause one with its `paused` flag or
# `gcloud scheduler jobs pause`.
resource "google_cloud_scheduler_job" "ingest" {
  for_each    = var.schedules
  name        = "barlake-${each.key}"
  region      = var.region
  description = "Scheduled barlake ingest run (${each.key})."
  schedule    = each.value.schedule
  time_zone   = each.value.time_zone
  paused      = each.value.paused

  pubsub_target {
    topic_name = google_pubsub_topic.ingest_requests.id
    data       = base64encode(jsonencode({ version = 1, kind = "scheduled", universe = each.value.universe }))
    attributes = { origin = "cloud-scheduler" }
  }

  retry_config {
    retry_count          = 3
    min_backoff_duration = "60s"
    max_backoff_duration = "600s"
  }

  depends_on = [google_project_service.api]
}

# The deep audit (shared/barlake/services/audit.py): once a day an AuditTick (version 1, kind
# "audit") on ingest-batches; the ingest function dispatches the symbols verified longest ago
# (ceil(n / BARLAKE_AUDIT_PERIOD_DAYS) of them) as that day's audit run, so every symbol's whole
# history is compared bar for bar with the provider at least every audit_period_days days.
resource "google_cloud_scheduler_job" "audit" {
  name        = "barlake-audit"
  region      = var.region
  description = "Daily barlake deep audit: a rolling slice of the universe, fully re-verified."
  schedule    = var.audit_schedule
  time_zone   = "Etc/UTC"
  paused      = var.audit_paused

  pubsub_target {
    topic_name = google_pubsub_topic.ingest_batches.id
    data       = base64encode(jsonencode({ version = 1, kind = "audit" }))
    attributes = { origin = "cloud-scheduler" }
  }

  retry_config {
    retry_count          = 3
    min_backoff_duration = "60s"
    max_backoff_duration = "600s"
  }

  depends_on = [google_project_service.api]
}

# The reconciliation sweep: a `repair` request ({"version":1,"kind":"repair"}) that dispatch
# answers by comparing every derived output's source_generation with its daily object
# (listings only) and rebuilding what is missing or behind — what a dropped or dead-lettered
# finalize event left undone. Metadata only when all is well.
resource "google_cloud_scheduler_job" "repair" {
  name        = "barlake-repair-sweep"
  region      = var.region
  description = "barlake reconciliation sweep: rebuild derived outputs missing or behind their daily object."
  schedule    = var.repair_schedule
  time_zone   = "Etc/UTC"

  pubsub_target {
    topic_name = google_pubsub_topic.ingest_requests.id
    data       = base64encode(jsonencode({ version = 1, kind = "repair" }))
    attributes = { origin = "cloud-scheduler" }
  }

  retry_config {
    retry_count          = 1
    min_backoff_duration = "60s"
    max_backoff_duration = "600s"
  }

  depends_on = [google_project_service.api]
}
