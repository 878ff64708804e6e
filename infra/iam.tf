# What each function's identity may do: exactly what its code path does, and no more.
# tests/test_infra_wiring.py runs every function's code path from its archive, records each
# storage, state and topic operation, and checks that these grants cover them and that every
# grant (and every permission of the custom roles) is used.
#
#   dispatch  Firestore read/write (registry, run ledger, profiles); publish to ingest-batches;
#             the repair sweep: raw objects list/get, derived objects list/get/create/replace
#   ingest    raw objects get/create/replace; Firestore read/write (ledger, quarantine);
#             the Upstash token (announces new generations to the cache; secrets.tf);
#             the Tiingo, Alpha Vantage and Polygon keys (fallback bar providers)
#   weekly    raw objects get; derived objects get/create/replace; the Upstash token
#   profile   raw objects get; derived objects get/create/replace; Firestore read/write;
#             the Upstash token
#   api       raw objects list/get (the inventory counts the daily objects; as-of reads list a
#             daily object's versions), derived objects get; Firestore read; the Upstash token
#             and API keys
#   panel     raw objects get and list (which daily objects changed); derived objects
#             get/create/replace (panel partitions, manifest, lease)
#   ingest    also publishes to run-completed
#
# Only dispatch (the repair sweep), the panel and the api list objects; no function deletes one.
# Replacing an object needs storage.objects.delete in GCS (an overwrite deletes the old
# generation), hence the writer roles' delete.

resource "google_project_iam_custom_role" "object_reader" {
  role_id     = "barlakeObjectReader"
  title       = "barlake object reader"
  description = "Read one object by name (no listing)."
  permissions = ["storage.objects.get"]
}

resource "google_project_iam_custom_role" "object_writer" {
  role_id     = "barlakeObjectWriter"
  title       = "barlake object writer"
  description = "Read, create and replace objects by name (replacing needs delete); no listing."
  permissions = ["storage.objects.create", "storage.objects.delete", "storage.objects.get"]
}

resource "google_project_iam_custom_role" "object_lister" {
  role_id     = "barlakeObjectLister"
  title       = "barlake object lister"
  description = "List objects and read them by name."
  permissions = ["storage.objects.get", "storage.objects.list"]
}

resource "google_project_iam_custom_role" "object_rebuilder" {
  role_id     = "barlakeObjectRebuilder"
  title       = "barlake object rebuilder"
  description = "List, read, create and replace objects (replacing needs delete)."
  permissions = ["storage.objects.create", "storage.objects.delete", "storage.objects.get", "storage.objects.list"]
}

locals {
  # Firestore grants are limited to the lake's database by an IAM condition.
  firestore_condition = "resource.name == \"projects/${var.project_id}/databases/${var.firestore_database}\""
}

# ---------------------------------------------------------------- dispatch

resource "google_project_iam_member" "dispatch_state" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.fn["dispatch"].email}"
  condition {
    title      = "barlake database only"
    expression = local.firestore_condition
  }
}

resource "google_pubsub_topic_iam_member" "dispatch_publish_batches" {
  topic  = google_pubsub_topic.ingest_batches.name
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.fn["dispatch"].email}"
}

# The repair sweep (barlake.services.reconcile): lists both buckets, rebuilds derived outputs.
resource "google_storage_bucket_iam_member" "dispatch_raw" {
  bucket = google_storage_bucket.raw.name
  role   = google_project_iam_custom_role.object_lister.id
  member = "serviceAccount:${google_service_account.fn["dispatch"].email}"
}

resource "google_storage_bucket_iam_member" "dispatch_derived" {
  bucket = google_storage_bucket.derived.name
  role   = google_project_iam_custom_role.object_rebuilder.id
  member = "serviceAccount:${google_service_account.fn["dispatch"].email}"
}

# ---------------------------------------------------------------- ingest

# The audit tick (scheduler.tf) is handled by ingest, which dispatches the day's slice of the
# universe as an audit run: one message per batch on ingest-batches.
resource "google_pubsub_topic_iam_member" "ingest_publish_audit_batches" {
  topic  = google_pubsub_topic.ingest_batches.name
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.fn["ingest"].email}"
}

resource "google_storage_bucket_iam_member" "ingest_raw" {
  bucket = google_storage_bucket.raw.name
  role   = google_project_iam_custom_role.object_writer.id
  member = "serviceAccount:${google_service_account.fn["ingest"].email}"
}

resource "google_project_iam_member" "ingest_state" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.fn["ingest"].email}"
  condition {
    title      = "barlake database only"
    expression = local.firestore_condition
  }
}

resource "google_pubsub_topic_iam_member" "ingest_publish_run_completed" {
  topic  = google_pubsub_topic.run_completed.name
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.fn["ingest"].email}"
}

# ---------------------------------------------------------------- weekly

resource "google_storage_bucket_iam_member" "weekly_raw" {
  bucket = google_storage_bucket.raw.name
  role   = google_project_iam_custom_role.object_reader.id
  member = "serviceAccount:${google_service_account.fn["weekly"].email}"
}

resource "google_storage_bucket_iam_member" "weekly_derived" {
  bucket = google_storage_bucket.derived.name
  role   = google_project_iam_custom_role.object_writer.id
  member = "serviceAccount:${google_service_account.fn["weekly"].email}"
}

# ---------------------------------------------------------------- profile

resource "google_storage_bucket_iam_member" "profile_raw" {
  bucket = google_storage_bucket.raw.name
  role   = google_project_iam_custom_role.object_reader.id
  member = "serviceAccount:${google_service_account.fn["profile"].email}"
}

resource "google_storage_bucket_iam_member" "profile_derived" {
  bucket = google_storage_bucket.derived.name
  role   = google_project_iam_custom_role.object_writer.id
  member = "serviceAccount:${google_service_account.fn["profile"].email}"
}

resource "google_project_iam_member" "profile_state" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.fn["profile"].email}"
  condition {
    title      = "barlake database only"
    expression = local.firestore_condition
  }
}

# ---------------------------------------------------------------- api

resource "google_storage_bucket_iam_member" "api_raw" {
  bucket = google_storage_bucket.raw.name
  role   = google_project_iam_custom_role.object_lister.id
  member = "serviceAccount:${google_service_account.fn["api"].email}"
}

resource "google_storage_bucket_iam_member" "api_derived" {
  bucket = google_storage_bucket.derived.name
  role   = google_project_iam_custom_role.object_reader.id
  member = "serviceAccount:${google_service_account.fn["api"].email}"
}

resource "google_project_iam_member" "api_state" {
  project = var.project_id
  role    = "roles/datastore.viewer"
  member  = "serviceAccount:${google_service_account.fn["api"].email}"
  condition {
    title      = "barlake database only"
    expression = local.firestore_condition
  }
}

# ---------------------------------------------------------------- panel

resource "google_storage_bucket_iam_member" "panel_raw" {
  bucket = google_storage_bucket.raw.name
  role   = google_project_iam_custom_role.object_lister.id
  member = "serviceAccount:${google_service_account.fn["panel"].email}"
}

resource "google_storage_bucket_iam_member" "panel_derived" {
  bucket = google_storage_bucket.derived.name
  role   = google_project_iam_custom_role.object_writer.id
  member = "serviceAccount:${google_service_account.fn["panel"].email}"
}
