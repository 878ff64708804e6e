# Guardrails: a billing budget, a freshness SLO on the scheduled run, and an uptime check on the
# API's health endpoint. Alerts go to local.channels (alert_emails + notification_channels).

# ---------------------------------------------------------------- budget

resource "google_billing_budget" "lake" {
  count           = var.billing_account == "" ? 0 : 1
  billing_account = var.billing_account
  display_name    = "barlake monthly budget"

  budget_filter {
    projects = ["projects/${data.google_project.this.number}"]
  }
  amount {
    specified_amount {
      currency_code = "USD"
      units         = tostring(var.monthly_budget_usd)
    }
  }
  dynamic "threshold_rules" {
    for_each = var.budget_thresholds
    content {
      threshold_percent = threshold_rules.value
    }
  }
  threshold_rules { # the month's forecast heading over budget, before it happens
    threshold_percent = 1.0
    spend_basis       = "FORECASTED_SPEND"
  }
  all_updates_rule {
    monitoring_notification_channels = local.channels
    disable_default_iam_recipients   = false # billing admins are e-mailed too
  }
  depends_on = [google_project_service.api]
}

# ---------------------------------------------------------------- freshness

# The ingest that records a run's last batch announces the run complete (run-completed topic)
# and logs outcome "run_completed": one point per complete run.
resource "google_logging_metric" "runs_completed" {
  name        = "barlake/runs_completed"
  description = "Ingest runs whose every batch is recorded (the panel is rebuilt after each)."
  filter      = "${local.fn_logs} AND jsonPayload.function=\"ingest\" AND jsonPayload.outcome=\"run_completed\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
  }
}

# Freshness SLO: the daily run completes within freshness_deadline_hours of its tick. With a
# run every day, no completion for 24 h + the deadline means today's run is late.
resource "google_monitoring_alert_policy" "freshness" {
  display_name          = "barlake: scheduled run late"
  combiner              = "OR"
  notification_channels = local.channels
  documentation {
    content   = "No ingest run has completed for ${24 + var.freshness_deadline_hours} hours: today's scheduled run is past its deadline (${var.freshness_deadline_hours} h after the tick). `barlake status` shows the run's batches; dead letters and Yahoo rate limits are the usual causes. See docs/deploy.md, Operating."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "no run completed for ${24 + var.freshness_deadline_hours} h"
    condition_prometheus_query_language {
      query               = "absent_over_time(logging_googleapis_com:user_barlake_runs_completed{monitored_resource=\"cloud_run_revision\"}[${24 + var.freshness_deadline_hours}h])"
      duration            = "0s"
      evaluation_interval = "300s"
    }
  }
  alert_strategy {
    auto_close = "86400s"
  }
  depends_on = [google_logging_metric.runs_completed]
}

# ---------------------------------------------------------------- uptime

# Google's checkers call /v1/health (open even with API keys) every 5 minutes with an OIDC
# token of the Monitoring service agent, which may invoke the private API function.
resource "google_monitoring_uptime_check_config" "api_health" {
  display_name = "barlake api /v1/health"
  timeout      = "10s"
  period       = "300s"

  http_check {
    path         = "/v1/health"
    port         = 443
    use_ssl      = true
    validate_ssl = true
    service_agent_authentication {
      type = "OIDC_TOKEN"
    }
    accepted_response_status_codes {
      status_class = "STATUS_CLASS_2XX"
    }
  }
  monitored_resource {
    type = "uptime_url"
    labels = {
      project_id = var.project_id
      host       = trimprefix(google_cloudfunctions2_function.fn["api"].service_config[0].uri, "https://")
    }
  }
}

resource "google_cloud_run_v2_service_iam_member" "api_uptime" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.fn["api"].name
  role     = "roles/run.invoker"
  member   = local.monitoring_agent
}

resource "google_monitoring_alert_policy" "api_down" {
  display_name          = "barlake: API health failing"
  combiner              = "OR"
  notification_channels = local.channels
  documentation {
    content   = "/v1/health has failed from more than one checker location for 10 minutes: storage or state is down (503) or the function does not answer. The body of /v1/health names the failing dependency."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "uptime check failing"
    condition_threshold {
      filter          = "metric.type=\"monitoring.googleapis.com/uptime_check/check_passed\" AND resource.type=\"uptime_url\" AND metric.label.check_id=\"${google_monitoring_uptime_check_config.api_health.uptime_check_id}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 1
      duration        = "600s"
      aggregations {
        alignment_period     = "1200s"
        per_series_aligner   = "ALIGN_NEXT_OLDER"
        cross_series_reducer = "REDUCE_COUNT_FALSE"
        group_by_fields      = ["resource.label.*"]
      }
    }
  }
  alert_strategy {
    auto_close = "86400s"
  }
}
