# Topics and subscriptions (the same names as barlake.messages and the local stack).
#
#   ingest-requests  Cloud Scheduler ticks and `barlake backfill` → dispatch
#   ingest-batches   dispatch → ingest, one message per batch of symbols
#   dead-letter      what dispatch or ingest could not process after max_delivery_attempts
#   run-completed    the ingest that finishes a run's last batch → panel (one message per run)
#
# dispatch and ingest are fed by push subscriptions we own, not by Eventarc-managed ones: only
# a subscription in Terraform can carry the dead-letter policy, the retry backoff and an ack
# deadline matching the function's timeout. Pushes are authenticated (OIDC token of the invoker
# service account) and the functions accept internal traffic only.

resource "google_pubsub_topic" "ingest_requests" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption; the messages are symbol lists and dates, not sensitive data worth a customer-managed key
  name                       = "ingest-requests"
  message_retention_duration = "86400s" # a day of requests can be replayed by seek
  depends_on                 = [google_project_service.api]
}

resource "google_pubsub_topic" "ingest_batches" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption; the messages are symbol lists and dates, not sensitive data worth a customer-managed key
  name                       = "ingest-batches"
  message_retention_duration = "86400s"
  depends_on                 = [google_project_service.api]
}

resource "google_pubsub_topic" "run_completed" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption; the messages are run ids, not sensitive data worth a customer-managed key
  name                       = "run-completed"
  message_retention_duration = "86400s"
  depends_on                 = [google_project_service.api]
}

resource "google_pubsub_topic" "dead_letter" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption; the messages are symbol lists and dates, not sensitive data worth a customer-managed key
  name                       = "dead-letter"
  message_retention_duration = "604800s"
  depends_on                 = [google_project_service.api]
}

locals {
  # Subscription → (topic, pushed function). The same table as barlake.stack.subscriptions.
  push_subscriptions = {
    dispatch = google_pubsub_topic.ingest_requests.id
    ingest   = google_pubsub_topic.ingest_batches.id
    panel    = google_pubsub_topic.run_completed.id
  }
}

resource "google_pubsub_subscription" "push" {
  for_each = local.push_subscriptions
  name     = each.key
  topic    = each.value

  # Pub/Sub waits this long for the function's answer before redelivering: at least the
  # function's timeout, so a slow batch is not delivered twice while it still runs (600 s is
  # the push maximum).
  ack_deadline_seconds       = 600
  message_retention_duration = "604800s"

  # Back off between deliveries: a failing batch is usually Yahoo rate-limiting us.
  retry_policy {
    minimum_backoff = "30s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  push_config {
    push_endpoint = google_cloudfunctions2_function.fn[each.key].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = google_cloudfunctions2_function.fn[each.key].service_config[0].uri
    }
  }

  expiration_policy {
    ttl = "" # never expires, however quiet the schedule
  }

  depends_on = [
    google_pubsub_topic_iam_member.dead_letter_publisher,
    google_cloud_run_v2_service_iam_member.invoker,
  ]
}

# Where operators read (and replay) dead letters: a pull subscription keeping them a week.
resource "google_pubsub_subscription" "dead_letter_inspect" {
  name                       = "dead-letter-inspect"
  topic                      = google_pubsub_topic.dead_letter.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  expiration_policy {
    ttl = ""
  }
}

# Dead-lettering is done by the Pub/Sub service agent: it publishes to the dead-letter topic and
# acknowledges the original message on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  topic  = google_pubsub_topic.dead_letter.name
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each     = local.push_subscriptions
  subscription = google_pubsub_subscription.push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# The Pub/Sub service agent mints the push OIDC tokens for the invoker account (needed on
# projects created before April 2021; harmless after).
resource "google_service_account_iam_member" "pubsub_token_creator" {
  service_account_id = google_service_account.invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

# Eventarc storage triggers receive GCS notifications through Pub/Sub: the Cloud Storage
# service agent must be allowed to publish.
resource "google_project_iam_member" "storage_agent_publisher" {
  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = local.storage_agent
}
