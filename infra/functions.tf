# The six functions (Cloud Run functions, 2nd gen), one service account each.
#
# Sizing, per function (memory / CPU / timeout / max instances / concurrency):
# - dispatch: 512Mi / 1 / 300 s / 3 / 1. Reads the symbol registry (10,000 small documents)
#   and publishes one message per batch; runs a few times a day. Three instances cover a
#   scheduled tick, a backfill and a redelivery at once.
# - ingest: 1Gi / 1 / 540 s / var.ingest_max_instances / 1. One batch (50 symbols, up to 20
#   years each) is fetched, validated (pandas + exchange calendars), merged and written;
#   540 s leaves room for Yahoo backoff within the 600 s push ack deadline. One batch per
#   instance keeps yfinance's process-wide session and caches single-user, and makes
#   max instances exactly the number of concurrent Yahoo clients: the rate-limit valve.
#   Pushes above it are answered 429 and redelivered by Pub/Sub with backoff.
# - weekly: 512Mi / 1 / 120 s / 20 / 1. Reads one ~90 KB daily object, writes two small
#   ones; a daily run finalizes up to 10,000 objects, 20 instances clear that in minutes.
# - profile: 512Mi / 1 / 120 s / 20 / 1. Same shape as weekly plus one Firestore write.
# - api: 1Gi / 1 / 60 s / 10 / 8. HTTP, mostly waiting on the cache or GCS, so several
#   requests share an instance (the App is built once per instance and is read-only);
#   1 GiB holds a 20-year daily table in Arrow, JSON and CSV at once.
# - panel: 2Gi / 1 / 540 s / 1 / 1. After a run: reads the daily objects that changed (16
#   threads), rewrites this year's panel partitions (10,000 symbols: ~2.5M daily rows, ~200 MB
#   in Arrow while merged). One instance: builds are serialized by a lease anyway.
locals {
  functions = {
    dispatch = {
      description = "Run request (scheduler or backfill) -> run ledger and one message per batch."
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 300
      max         = 3
      concurrency = 1
      trigger     = "pubsub"
      env         = merge(local.env_common, local.env_events, local.env_dispatch, local.env_cache)
      secrets     = local.secrets_cache
    }
    ingest = {
      description = "One batch of symbols -> fetch, validate, merge, conditional write to the raw bucket."
      memory      = "1Gi"
      cpu         = "1"
      timeout     = 540
      max         = var.ingest_max_instances
      concurrency = 1
      trigger     = "pubsub"
      # env_dispatch too: the audit tick (scheduler.tf) makes ingest dispatch the day's slice.
      env     = merge(local.env_common, local.env_events, local.env_dispatch, local.env_ingest, local.env_cache)
      secrets = merge(local.secrets_cache, local.secrets_providers)
    }
    weekly = {
      description = "Daily object finalized in the raw bucket -> weekly and monthly bars in the derived bucket."
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 120
      max         = 20
      concurrency = 1
      trigger     = "storage"
      env         = merge(local.env_common, local.env_events, local.env_cache)
      secrets     = local.secrets_cache
    }
    profile = {
      description = "Daily object finalized in the raw bucket -> data-quality profile (derived bucket) and inventory (Firestore)."
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 120
      max         = 20
      concurrency = 1
      trigger     = "storage"
      env         = merge(local.env_common, local.env_events, local.env_cache)
      secrets     = local.secrets_cache
    }
    api = {
      description = "HTTPS API: bars, profiles, inventory, run status; cache in front of GCS."
      memory      = "1Gi"
      cpu         = "1"
      timeout     = 60
      max         = 10
      concurrency = 8
      trigger     = "http"
      env         = merge(local.env_common, local.env_cache, local.env_api)
      secrets     = merge(local.secrets_cache, local.secrets_api_keys)
    }
    panel = {
      description = "Run completed -> the cross-sectional panel (panel/daily|weekly|monthly/year=YYYY/) in the derived bucket."
      memory      = "2Gi"
      cpu         = "1"
      timeout     = 540
      max         = 1
      concurrency = 1
      trigger     = "pubsub"
      env         = merge(local.env_common, local.env_events)
      secrets     = {}
    }
  }

  # Environment, by who reads it (barlake.config.Settings: each variable's `used_by`).
  # tests/test_infra_wiring.py checks every function gets exactly the variables it reads.
  env_common = {
    BARLAKE_STORAGE            = "gcs"
    BARLAKE_EVENTS             = "pubsub"
    BARLAKE_STATE              = "firestore"
    BARLAKE_PROJECT            = var.project_id
    BARLAKE_FIRESTORE_DATABASE = google_firestore_database.state.name
    BARLAKE_RAW_BUCKET         = google_storage_bucket.raw.name
    BARLAKE_DERIVED_BUCKET     = google_storage_bucket.derived.name
  }
  env_events = {
    BARLAKE_MAX_EVENT_AGE_SECONDS = tostring(var.max_event_age_seconds)
  }
  # The cache: the api reads through it; ingest, weekly, profile and dispatch (whose repair
  # sweep rebuilds derived outputs) announce every new object generation to it, so the api
  # never serves a body older than the object (keys carry the generation; TTLs are only a
  # safety net).
  env_cache = {
    BARLAKE_CACHE           = var.cache_backend
    BARLAKE_UPSTASH_URL     = var.upstash_url
    BARLAKE_REDIS_URL       = var.redis_url
    BARLAKE_CACHE_BUDGET_MS = tostring(var.cache_budget_ms)
  }
  env_dispatch = {
    BARLAKE_BATCH_SIZE           = tostring(var.batch_size)
    BARLAKE_INGEST_BATCHES_TOPIC = google_pubsub_topic.ingest_batches.name
  }
  env_ingest = {
    BARLAKE_PROVIDER          = "yahoo"
    BARLAKE_OVERLAP_SESSIONS  = tostring(var.overlap_sessions)
    BARLAKE_DEFAULT_START     = var.default_start
    BARLAKE_AUDIT_PERIOD_DAYS = tostring(var.audit_period_days)
    BARLAKE_TIINGO_URL        = var.tiingo_url
    BARLAKE_ALPHAVANTAGE_URL  = var.alphavantage_url
    BARLAKE_POLYGON_URL       = var.polygon_url
    # The request budget (README "Pacing and the request budget"): one budget shared by every
    # ingest instance through Redis/Upstash; an instance pacing alone (pacer_backend = memory,
    # or the shared budget unreachable) takes its slice, the budget ÷ ingest_max_instances.
    BARLAKE_PACER                     = var.pacer_backend
    BARLAKE_YAHOO_REQUESTS_PER_MINUTE = tostring(var.yahoo_requests_per_minute)
    BARLAKE_PACER_MAX_WAIT_S          = tostring(var.pacer_max_wait_s)
    BARLAKE_PACER_JITTER_MS           = tostring(var.pacer_jitter_ms)
    BARLAKE_PACER_INSTANCES           = tostring(var.ingest_max_instances)
    BARLAKE_YAHOO_CONCURRENCY         = tostring(var.yahoo_concurrency)
    BARLAKE_YAHOO_QUOTES              = var.yahoo_quotes
    BARLAKE_OUTAGE_SHARE              = tostring(var.outage_share)
    BARLAKE_OUTAGE_MIN_SYMBOLS        = tostring(var.outage_min_symbols)
    BARLAKE_DELIST_AFTER_DAYS         = tostring(var.delist_after_days)
    # the ingest finishing a run's last batch announces it here (the panel builds on it)
    BARLAKE_RUN_COMPLETED_TOPIC = google_pubsub_topic.run_completed.name
  }
  env_api = {
    BARLAKE_CACHE_MEMORY_MB  = tostring(var.cache_memory_mb)
    BARLAKE_BENCHMARK_SYMBOL = var.benchmark_symbol
  }
  # Secret-backed variables: name => Secret Manager secret id (latest version, read at start).
  secrets_cache = {
    BARLAKE_UPSTASH_TOKEN = google_secret_manager_secret.upstash_token.secret_id
  }
  secrets_api_keys = {
    BARLAKE_API_KEYS = google_secret_manager_secret.api_keys.secret_id
  }
  # The fallback providers' keys: only ingest fetches bars (README "Providers").
  secrets_providers = {
    BARLAKE_TIINGO_TOKEN     = google_secret_manager_secret.tiingo_token.secret_id
    BARLAKE_ALPHAVANTAGE_KEY = google_secret_manager_secret.alphavantage_key.secret_id
    BARLAKE_POLYGON_KEY      = google_secret_manager_secret.polygon_key.secret_id
  }

  dist_dir = abspath(startswith(var.dist_dir, "/") ? var.dist_dir : "${path.module}/${var.dist_dir}")
}

resource "google_service_account" "fn" {
  for_each     = local.functions
  account_id   = "barlake-${each.key}"
  display_name = "barlake ${each.key} function"
  description  = "Runtime identity of the ${each.key} function: only the roles its code path uses (infra/iam.tf)."
}

# Pushes from Pub/Sub and Eventarc deliveries present this identity; it may only invoke.
resource "google_service_account" "invoker" {
  account_id   = "barlake-invoker"
  display_name = "barlake event delivery"
  description  = "Identity of Pub/Sub pushes and Eventarc triggers: invokes the event functions, nothing else."
}

# Cloud Build identity for building the function images from the uploaded archives.
resource "google_service_account" "build" {
  account_id   = "barlake-build"
  display_name = "barlake function builds"
  description  = "Builds the function images: reads the source archives, pushes images, writes build logs."
}

resource "google_storage_bucket_object" "source" {
  for_each = local.functions
  # The hash in the name makes a changed archive a new object, which redeploys the function.
  name   = "functions/${each.key}-${filemd5("${local.dist_dir}/${each.key}.zip")}.zip"
  bucket = google_storage_bucket.sources.name
  source = "${local.dist_dir}/${each.key}.zip"
}

resource "google_cloudfunctions2_function" "fn" {
  for_each    = local.functions
  name        = each.key
  location    = var.region
  description = each.value.description

  build_config {
    runtime           = var.python_runtime
    entry_point       = each.key
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source[each.key].name
      }
    }
  }

  service_config {
    available_memory                 = each.value.memory
    available_cpu                    = each.value.cpu
    timeout_seconds                  = each.value.timeout
    min_instance_count               = 0
    max_instance_count               = each.value.max
    max_instance_request_concurrency = each.value.concurrency
    service_account_email            = google_service_account.fn[each.key].email
    # Event functions are reached only by Pub/Sub pushes and Eventarc (internal traffic).
    ingress_settings               = each.value.trigger == "http" ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    environment_variables          = merge(each.value.env, { LOG_EXECUTION_ID = "true" })

    dynamic "secret_environment_variables" {
      for_each = each.value.secrets
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }

  # weekly and profile: Eventarc storage triggers on the raw bucket only (never derived, so
  # nothing a function writes can trigger it again). Retried with backoff on failure; the
  # functions acknowledge events older than max_event_age_seconds.
  dynamic "event_trigger" {
    for_each = each.value.trigger == "storage" ? [google_storage_bucket.raw.name] : []
    content {
      trigger_region        = var.region
      event_type            = "google.cloud.storage.object.v1.finalized"
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = google_service_account.invoker.email
      event_filters {
        attribute = "bucket"
        value     = event_trigger.value
      }
    }
  }

  depends_on = [
    google_project_service.api,
    google_project_iam_member.storage_agent_publisher,
    google_project_iam_member.build,
    google_artifact_registry_repository_iam_member.build,
  ]
}

# Invoking: the invoker account may call the four event functions; the API is private unless
# api_public opens it, and api_invokers lists who else may call it.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = { for k, v in local.functions : k => v if v.trigger != "http" }
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.invoker.email}"
}

resource "google_project_iam_member" "invoker_event_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.invoker.email}"
}

resource "google_cloud_run_v2_service_iam_member" "api_invokers" {
  for_each = toset(var.api_invokers)
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.fn["api"].name
  role     = "roles/run.invoker"
  member   = each.value
}

resource "google_cloud_run_v2_service_iam_member" "api_public" {
  count    = var.api_public ? 1 : 0
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.fn["api"].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# The build account: the roles Cloud Functions documents for a custom build service account,
# Artifact Registry write scoped to the one repository the function images go to (not the
# whole project's registries).
resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter"])
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${google_service_account.build.email}"
}

resource "google_artifact_registry_repository" "functions" {
  # checkov:skip=CKV_GCP_84: Google-managed encryption; the images are built from this public code, nothing secret
  location      = var.region
  repository_id = "barlake-functions"
  format        = "DOCKER"
  description   = "Images of the barlake functions (built by Cloud Build from the uploaded archives)."
  depends_on    = [google_project_service.api]
}

resource "google_artifact_registry_repository_iam_member" "build" {
  project    = var.project_id
  location   = var.region
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.build.email}"
}

resource "google_storage_bucket_iam_member" "build_sources" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}
