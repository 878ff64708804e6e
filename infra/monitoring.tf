# Log-based metrics and alert policies. The functions log one JSON line per event
# (barlake.cloudfn: jsonPayload.function, jsonPayload.outcome), and ingest logs one line per
# batch with failed symbols (outcome "symbols_failed", with run_id, batch_id and error kinds).

locals {
  fn_logs = "resource.type=\"cloud_run_revision\" AND jsonPayload.function:*"
}

resource "google_logging_metric" "ingest_failures" {
  name        = "barlake/ingest_failures"
  description = "Ingest batches in which at least one symbol failed (any error kind)."
  filter      = "${local.fn_logs} AND jsonPayload.function=\"ingest\" AND jsonPayload.outcome=\"symbols_failed\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
  }
}

resource "google_logging_metric" "retries" {
  name        = "barlake/retries"
  description = "Events a function gave back to be redelivered (transient errors), by function."
  filter      = "${local.fn_logs} AND jsonPayload.outcome=\"retry\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "function"
      value_type = "STRING"
    }
  }
  label_extractors = { function = "EXTRACT(jsonPayload.function)" }
}

# Stale symbols: an event acknowledged unprocessed because it was older than
# max_event_age_seconds leaves its symbols (or derived outputs) a run behind; a scheduler job
# that failed to publish leaves the whole universe a day behind.
resource "google_logging_metric" "stale_events" {
  name        = "barlake/stale_events"
  description = "Events dropped as too old (their symbols stay stale until the next run), by function."
  filter      = "${local.fn_logs} AND jsonPayload.outcome=\"too_old\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "function"
      value_type = "STRING"
    }
  }
  label_extractors = { function = "EXTRACT(jsonPayload.function)" }
}

resource "google_logging_metric" "scheduler_failures" {
  name        = "barlake/scheduler_failures"
  description = "Cloud Scheduler attempts that failed to publish a run request."
  filter      = "resource.type=\"cloud_scheduler_job\" AND resource.labels.job_id:\"barlake-\" AND severity>=ERROR"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
  }
}

resource "google_monitoring_notification_channel" "email" {
  for_each     = toset(var.alert_emails)
  display_name = "barlake alerts: ${each.value}"
  type         = "email"
  labels       = { email_address = each.value }
}

locals {
  channels = concat([for c in google_monitoring_notification_channel.email : c.id], var.notification_channels)
}

resource "google_monitoring_alert_policy" "ingest_failures" {
  display_name          = "barlake: ingest failures"
  combiner              = "OR"
  notification_channels = local.channels
  documentation {
    content   = "Ingest batches with failed symbols exceeded the threshold in one hour. `barlake status` names the symbols and error kinds; rate_limited/transient ones are retried, not_found/no_data ones are recorded and skipped. See docs/deploy.md, Operating."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "batches with failed symbols per hour > ${var.ingest_failure_threshold}"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.ingest_failures.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.ingest_failure_threshold
      duration        = "0s"
      aggregations {
        alignment_period     = "3600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  alert_strategy {
    auto_close = "86400s"
  }
}

resource "google_monitoring_alert_policy" "stale_symbols" {
  display_name          = "barlake: stale symbols"
  combiner              = "OR"
  notification_channels = local.channels
  documentation {
    content   = "Symbols are falling behind: events were dropped as too old (max_event_age_seconds) or a scheduled run was not published. The next run catches up incrementally; for a gap, send `barlake backfill`. See docs/deploy.md, Operating."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "events dropped as too old"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.stale_events.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  conditions {
    display_name = "scheduled run not published"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.scheduler_failures.name}\" AND resource.type=\"cloud_scheduler_job\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  alert_strategy {
    auto_close = "86400s"
  }
}

# Dead letters: Pub/Sub's own count of messages forwarded to the dead-letter topic (no log line
# is written when that happens), and anything waiting in the inspection subscription.
resource "google_monitoring_alert_policy" "dead_letters" {
  display_name          = "barlake: dead-lettered messages"
  combiner              = "OR"
  notification_channels = local.channels
  documentation {
    content   = "A run request or batch failed max_delivery_attempts times and was moved to the dead-letter topic. Inspect and replay: docs/deploy.md, Operating."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "messages forwarded to dead-letter"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/dead_letter_message_count\" AND resource.type=\"pubsub_subscription\" AND (resource.labels.subscription_id=\"dispatch\" OR resource.labels.subscription_id=\"ingest\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  conditions {
    display_name = "dead letters waiting"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${google_pubsub_subscription.dead_letter_inspect.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "300s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }
  alert_strategy {
    auto_close = "86400s"
  }
}

# Provider outage (issue #11, shared/barlake/services/outage.py): a batch in which at least
# outage_share of the previously active symbols answered not-found / no-data at once — Yahoo
# blocking us, not delistings. The batch is retried with backoff and nothing is recorded;
# ingest logs one line per such batch (outcome "provider_outage").
resource "google_logging_metric" "provider_outages" {
  name        = "barlake/provider_outages"
  description = "Ingest batches held back as a provider outage (most known symbols answered not found / no data at once)."
  filter      = "${local.fn_logs} AND jsonPayload.function=\"ingest\" AND jsonPayload.outcome=\"provider_outage\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
  }
}

resource "google_monitoring_alert_policy" "provider_outage" {
  display_name          = "barlake: provider outage"
  combiner              = "OR"
  notification_channels = local.channels
  documentation {
    content   = "Yahoo answered \"not found / no data\" for most known symbols of a batch at once: it is blocking this project's egress IPs (or is down). Nothing was recorded as delisted; the batches are retried with backoff and the run stays incomplete until Yahoo answers again. If it lasts, lower yahoo_requests_per_minute. See README, \"Outage sense\"."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "batches held back as a provider outage"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.provider_outages.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  alert_strategy {
    auto_close = "86400s"
  }
}
