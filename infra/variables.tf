# Inputs. Every variable has a type, a description and, where a wrong value would only fail at
# apply time (or worse, at run time), a validation that fails at plan time instead.

variable "project_id" {
  description = "Google Cloud project that hosts the lake (also BARLAKE_PROJECT for every function)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id: 6-30 characters, lower case letters, digits and hyphens."
  }
}

variable "region" {
  description = "Region of the buckets, functions, Eventarc triggers, scheduler and BigQuery dataset. One region keeps every read and trigger local."
  type        = string
  default     = "us-central1"
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1 or europe-west4 (not a multi-region: Eventarc storage triggers must sit in the bucket's region)."
  }
}

variable "labels" {
  description = "Labels applied to every resource that takes them (provider default_labels)."
  type        = map(string)
  default     = { app = "barlake" }
  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "Label keys and values must be lower case letters, digits, _ or - (keys start with a letter, at most 63 characters)."
  }
}

variable "raw_bucket_name" {
  description = "Name of the raw bucket (daily bars, the only bucket with finalize triggers). Empty: <project_id>-barlake-raw."
  type        = string
  default     = ""
  validation {
    condition     = var.raw_bucket_name == "" || can(regex("^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", var.raw_bucket_name))
    error_message = "raw_bucket_name must be a valid bucket name (3-63 characters: lower case letters, digits, - and _)."
  }
}

variable "derived_bucket_name" {
  description = "Name of the derived bucket (weekly/monthly bars, profiles). Empty: <project_id>-barlake-derived."
  type        = string
  default     = ""
  validation {
    condition     = var.derived_bucket_name == "" || can(regex("^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", var.derived_bucket_name))
    error_message = "derived_bucket_name must be a valid bucket name (3-63 characters: lower case letters, digits, - and _)."
  }
}

variable "raw_noncurrent_days" {
  description = "Days a replaced version of a raw daily object is kept (object versioning on the raw bucket): how far back as-of reads (?as_of=) reach, and recovery from a bad restatement or deploy. The embedded lake's BARLAKE_RAW_NONCURRENT_DAYS."
  type        = number
  default     = 30
  validation {
    condition     = var.raw_noncurrent_days >= 1 && var.raw_noncurrent_days <= 365 && floor(var.raw_noncurrent_days) == var.raw_noncurrent_days
    error_message = "raw_noncurrent_days must be a whole number of days from 1 to 365."
  }
}

variable "raw_noncurrent_versions" {
  description = "Replaced versions kept per raw object at most (older ones are deleted even inside raw_noncurrent_days). A daily run replaces every object once per trading day, so keep at least the trading days in raw_noncurrent_days plus room for restatements."
  type        = number
  default     = 40
  validation {
    condition     = var.raw_noncurrent_versions >= 1 && var.raw_noncurrent_versions <= 100 && floor(var.raw_noncurrent_versions) == var.raw_noncurrent_versions
    error_message = "raw_noncurrent_versions must be a whole number from 1 to 100."
  }
}

variable "firestore_location" {
  description = "Location of the Firestore database (a multi-region such as nam5/eur3, or a region). Cannot be changed after creation."
  type        = string
  default     = "nam5"
  validation {
    condition     = can(regex("^([a-z]+[0-9]|[a-z]+-[a-z]+[0-9])$", var.firestore_location))
    error_message = "firestore_location must be a Firestore location such as nam5, eur3 or us-central1."
  }
}

variable "firestore_database" {
  description = "Firestore database id (BARLAKE_FIRESTORE_DATABASE). \"(default)\" uses the project's default database and its free tier."
  type        = string
  default     = "(default)"
  validation {
    condition     = var.firestore_database == "(default)" || can(regex("^[a-z][a-z0-9-]{2,61}[a-z0-9]$", var.firestore_database))
    error_message = "firestore_database must be \"(default)\" or 4-63 characters: lower case letters, digits and hyphens, starting with a letter."
  }
}

variable "python_runtime" {
  description = "Cloud Functions Python runtime (the project supports Python 3.11+)."
  type        = string
  default     = "python312"
  validation {
    condition     = contains(["python311", "python312", "python313"], var.python_runtime)
    error_message = "python_runtime must be python311, python312 or python313."
  }
}

variable "dist_dir" {
  description = "Folder holding the function archives built by `python -m barlake.package` (<name>.zip). Relative paths are relative to infra/."
  type        = string
  default     = "../dist/functions"
}

variable "ingest_max_instances" {
  description = "The provider rate-limit valve: at most this many ingest instances run, each handling one batch at a time, so at most this many clients talk to Yahoo at once."
  type        = number
  default     = 10
  validation {
    condition     = var.ingest_max_instances >= 1 && var.ingest_max_instances <= 100 && floor(var.ingest_max_instances) == var.ingest_max_instances
    error_message = "ingest_max_instances must be a whole number from 1 to 100."
  }
}

variable "batch_size" {
  description = "Symbols per ingest batch, i.e. per ingest-batches message (BARLAKE_BATCH_SIZE)."
  type        = number
  default     = 50
  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 1000 && floor(var.batch_size) == var.batch_size
    error_message = "batch_size must be a whole number from 1 to 1000 (the range barlake.config accepts)."
  }
}

variable "overlap_sessions" {
  description = "Stored sessions re-fetched on every incremental ingest to detect restatements (BARLAKE_OVERLAP_SESSIONS)."
  type        = number
  default     = 5
  validation {
    condition     = var.overlap_sessions >= 1 && var.overlap_sessions <= 250 && floor(var.overlap_sessions) == var.overlap_sessions
    error_message = "overlap_sessions must be a whole number from 1 to 250."
  }
}

variable "tiingo_url" {
  description = "Tiingo base URL (BARLAKE_TIINGO_URL); the token is in Secret Manager."
  type        = string
  default     = "https://api.tiingo.com"
}

variable "alphavantage_url" {
  description = "Alpha Vantage base URL (BARLAKE_ALPHAVANTAGE_URL); the key is in Secret Manager."
  type        = string
  default     = "https://www.alphavantage.co"
}

variable "polygon_url" {
  description = "Polygon/Massive base URL (BARLAKE_POLYGON_URL); the key is in Secret Manager."
  type        = string
  default     = "https://api.polygon.io"
}

variable "default_start" {
  description = "First date fetched for a new symbol, YYYY-MM-DD (BARLAKE_DEFAULT_START). Empty: the provider's full history."
  type        = string
  default     = ""
  validation {
    condition     = var.default_start == "" || can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", var.default_start))
    error_message = "default_start must be empty or a date YYYY-MM-DD."
  }
}

variable "max_event_age_seconds" {
  description = "Events older than this are acknowledged without work (BARLAKE_MAX_EVENT_AGE_SECONDS), so a poisoned retry never runs for days."
  type        = number
  default     = 21600
  validation {
    condition     = var.max_event_age_seconds >= 60 && var.max_event_age_seconds <= 604800 && floor(var.max_event_age_seconds) == var.max_event_age_seconds
    error_message = "max_event_age_seconds must be a whole number from 60 to 604800 (7 days)."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries of a run request or a batch before Pub/Sub moves it to the dead-letter topic."
  type        = number
  default     = 10
  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100 && floor(var.max_delivery_attempts) == var.max_delivery_attempts
    error_message = "max_delivery_attempts must be a whole number from 5 to 100 (Pub/Sub's limits)."
  }
}

variable "schedules" {
  description = "Cloud Scheduler jobs publishing a scheduled run request to ingest-requests: name => cron (in time_zone), optional universe (default: the registry's \"default\" universe) and paused flag."
  type = map(object({
    schedule  = string
    time_zone = optional(string, "Etc/UTC")
    universe  = optional(string)
    paused    = optional(bool, false)
  }))
  # Every day, not only weekdays: crypto trades on weekends, and a run that finds nothing new
  # writes nothing. 22:30 UTC is after the US close (21:00 UTC in winter) with a margin.
  # A universe name runs that universe's members of the day (README, Universes); the tiers are
  # the universes tier-1..3 (README, Tiers): tier 1 is read again the next morning, after
  # Yahoo's late corrections (its own run: scheduled-tier-1-{day}-{hour}).
  default = {
    daily       = { schedule = "30 22 * * *" }
    tier-1-late = { schedule = "30 3 * * 2-6", universe = "tier-1" }
  }
  validation {
    condition     = alltrue([for k, s in var.schedules : can(regex("^[a-z][a-z0-9-]{0,40}$", k)) && length(split(" ", trimspace(s.schedule))) == 5])
    error_message = "Each schedule needs a lower-case name (letters, digits, -) and a five-field cron expression."
  }
}

variable "audit_period_days" {
  description = "The deep audit verifies every symbol's whole history at least this often, in days (BARLAKE_AUDIT_PERIOD_DAYS)."
  type        = number
  default     = 7
  validation {
    condition     = var.audit_period_days >= 1 && var.audit_period_days <= 366 && floor(var.audit_period_days) == var.audit_period_days
    error_message = "audit_period_days must be a whole number from 1 to 366."
  }
}

variable "audit_schedule" {
  description = "Cron (UTC) of the daily deep-audit tick; away from the daily ingest so the two do not share Yahoo's rate limit."
  type        = string
  default     = "0 9 * * *"
  validation {
    condition     = length(split(" ", trimspace(var.audit_schedule))) == 5
    error_message = "audit_schedule must be a five-field cron expression."
  }
}

variable "audit_paused" {
  description = "Pause the deep-audit scheduler job."
  type        = bool
  default     = false
}

variable "api_public" {
  description = "Open the API to everyone (allUsers may invoke it). Off by default: only api_invokers may call it. Needs API keys (api_keys_configured)."
  type        = bool
  default     = false
  # A public API without keys lets anyone on the internet read the lake (and, before keys were
  # required for it, clear its cache): refused.
  validation {
    condition     = !var.api_public || var.api_keys_configured
    error_message = "api_public = true needs API keys: add at least one key to the barlake-api-keys secret, then set api_keys_configured = true (docs/deploy.md)."
  }
}

variable "api_keys_configured" {
  description = "Set to true once the barlake-api-keys secret holds at least one real key (its value never passes through Terraform). Required by api_public."
  type        = bool
  default     = false
}

variable "repair_schedule" {
  description = "Cron (UTC) of the reconciliation sweep (Cloud Scheduler job barlake-repair-sweep): derived outputs missing or behind their daily object are rebuilt by dispatch."
  type        = string
  default     = "15 */6 * * *"
  validation {
    condition     = length(split(" ", trimspace(var.repair_schedule))) == 5
    error_message = "repair_schedule must be a five-field cron expression."
  }
}

variable "api_invokers" {
  description = "Principals allowed to call the private API, e.g. [\"group:analysts@example.com\"]."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for m in var.api_invokers : can(regex("^(user|group|serviceAccount|domain):.+$", m))])
    error_message = "api_invokers entries must look like user:…, group:…, serviceAccount:… or domain:… (use api_public for allUsers)."
  }
}

variable "cache_backend" {
  description = "The cache (BARLAKE_CACHE) the api reads through and ingest/weekly/profile announce new generations to: upstash (Upstash Redis over REST; token in Secret Manager; recommended), redis (Memorystore or self-hosted, needs VPC egress; redis_url), memory (per api instance) or none (every read from GCS)."
  type        = string
  default     = "none"
  validation {
    condition     = contains(["upstash", "redis", "memory", "none"], var.cache_backend)
    error_message = "cache_backend must be upstash, redis, memory or none."
  }
}

variable "redis_url" {
  description = "Redis URL (BARLAKE_REDIS_URL) for cache_backend = redis: redis://host:6379/0, or rediss:// for TLS. Sensitive: a password in it stays out of plans and logs."
  type        = string
  default     = ""
  sensitive   = true
  validation {
    condition     = var.cache_backend != "redis" || can(regex("^rediss?://", var.redis_url))
    error_message = "cache_backend = redis needs redis_url = redis://… or rediss://…"
  }
}

variable "cache_budget_ms" {
  description = "A cache call slower than this many ms (BARLAKE_CACHE_BUDGET_MS) is abandoned and the request served from storage."
  type        = number
  default     = 50
  validation {
    condition     = var.cache_budget_ms >= 1 && var.cache_budget_ms <= 10000
    error_message = "cache_budget_ms must be 1 to 10000."
  }
}

variable "cache_memory_mb" {
  description = "In-process cache (L1) per api instance in MiB (BARLAKE_CACHE_MEMORY_MB); 0 turns it off."
  type        = number
  default     = 64
  validation {
    condition     = var.cache_memory_mb >= 0 && var.cache_memory_mb <= 4096
    error_message = "cache_memory_mb must be 0 to 4096."
  }
}

variable "benchmark_symbol" {
  description = "Default benchmark of the analytics endpoints (BARLAKE_BENCHMARK_SYMBOL): beta, alpha and correlation are measured against it."
  type        = string
  default     = "^GSPC"
  validation {
    condition     = can(regex("^\\^?[A-Za-z0-9][A-Za-z0-9.=-]{0,23}$", var.benchmark_symbol))
    error_message = "benchmark_symbol must be a Yahoo symbol such as ^GSPC or SPY."
  }
}

variable "upstash_url" {
  description = "Upstash Redis REST URL (BARLAKE_UPSTASH_URL), e.g. https://eu1-xyz.upstash.io. Required with cache_backend = upstash; the token goes into Secret Manager, never here."
  type        = string
  default     = ""
  validation {
    condition     = var.cache_backend != "upstash" || can(regex("^https://[^/]+", var.upstash_url))
    error_message = "cache_backend = upstash needs upstash_url = https://…"
  }
}

variable "alert_emails" {
  description = "Addresses notified by the alert policies (ingest failures, stale symbols, dead letters). Empty: alerts show in the console only."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for e in var.alert_emails : can(regex("^[^@\\s]+@[^@\\s]+$", e))])
    error_message = "alert_emails must be e-mail addresses."
  }
}

variable "ingest_failure_threshold" {
  description = "Ingest batches with failed symbols per hour above which the ingest-failures alert fires."
  type        = number
  default     = 5
  validation {
    condition     = var.ingest_failure_threshold >= 0
    error_message = "ingest_failure_threshold must not be negative."
  }
}

variable "bigquery_dataset" {
  description = "BigQuery dataset holding the external tables over the Parquet objects."
  type        = string
  default     = "barlake"
  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_]{0,1023}$", var.bigquery_dataset))
    error_message = "bigquery_dataset must be letters, digits and underscores."
  }
}

variable "pacer_backend" {
  description = "Where the Yahoo request budget lives (BARLAKE_PACER): upstash or redis (one token bucket shared by every ingest instance; uses upstash_url/redis_url and the Upstash token), or memory (each instance paces alone at yahoo_requests_per_minute / ingest_max_instances: safe, but the fleet rarely uses the whole budget)."
  type        = string
  default     = "memory"
  validation {
    condition     = contains(["upstash", "redis", "memory"], var.pacer_backend)
    error_message = "pacer_backend must be upstash, redis or memory."
  }
}

variable "yahoo_requests_per_minute" {
  description = "Requests per minute to Yahoo for the whole fleet (BARLAKE_YAHOO_REQUESTS_PER_MINUTE). yfinance's maintainers quote about 60 per client; 55 leaves headroom. 24 (2 per 5 s, yfinance's caching docs) from a shared IP."
  type        = number
  default     = 55
  validation {
    condition     = var.yahoo_requests_per_minute >= 1 && var.yahoo_requests_per_minute <= 10000
    error_message = "yahoo_requests_per_minute must be 1 to 10000."
  }
}

variable "pacer_max_wait_s" {
  description = "Longest an ingest instance waits for the request budget (BARLAKE_PACER_MAX_WAIT_S); beyond it the batch is retried later."
  type        = number
  default     = 120
  validation {
    condition     = var.pacer_max_wait_s >= 1 && var.pacer_max_wait_s <= 3600 && floor(var.pacer_max_wait_s) == var.pacer_max_wait_s
    error_message = "pacer_max_wait_s must be a whole number from 1 to 3600."
  }
}

variable "pacer_jitter_ms" {
  description = "Random delay up to this many ms added after each paced wait (BARLAKE_PACER_JITTER_MS)."
  type        = number
  default     = 250
  validation {
    condition     = var.pacer_jitter_ms >= 0 && var.pacer_jitter_ms <= 10000 && floor(var.pacer_jitter_ms) == var.pacer_jitter_ms
    error_message = "pacer_jitter_ms must be a whole number from 0 to 10000."
  }
}

variable "yahoo_concurrency" {
  description = "Yahoo requests in flight at once per ingest instance (BARLAKE_YAHOO_CONCURRENCY)."
  type        = number
  default     = 4
  validation {
    condition     = var.yahoo_concurrency >= 1 && var.yahoo_concurrency <= 64 && floor(var.yahoo_concurrency) == var.yahoo_concurrency
    error_message = "yahoo_concurrency must be a whole number from 1 to 64."
  }
}

variable "yahoo_quotes" {
  description = "on: daily updates take each symbol's new bar from Yahoo's quote endpoint (100 symbols a request) when it fits, chart requests only where needed; off: one chart request per symbol (BARLAKE_YAHOO_QUOTES). README, \"The request budget\"."
  type        = string
  default     = "on"
  validation {
    condition     = contains(["on", "off"], var.yahoo_quotes)
    error_message = "yahoo_quotes must be on or off."
  }
}

variable "outage_share" {
  description = "Share (0.01 to 1) of a batch's known symbols answering not-found/no-data at once that is treated as a provider outage, retried, not delistings (BARLAKE_OUTAGE_SHARE)."
  type        = number
  default     = 0.5
  validation {
    condition     = var.outage_share >= 0.01 && var.outage_share <= 1
    error_message = "outage_share must be from 0.01 to 1."
  }
}

variable "outage_min_symbols" {
  description = "Known symbols a batch needs before the outage rule applies (BARLAKE_OUTAGE_MIN_SYMBOLS)."
  type        = number
  default     = 5
  validation {
    condition     = var.outage_min_symbols >= 1 && var.outage_min_symbols <= 1000 && floor(var.outage_min_symbols) == var.outage_min_symbols
    error_message = "outage_min_symbols must be a whole number from 1 to 1000."
  }
}

variable "delist_after_days" {
  description = "Not-found answers on distinct days (within 14 days, in batches where other symbols succeeded) before a symbol is delisted: it leaves the daily fan-out and keeps its data (BARLAKE_DELIST_AFTER_DAYS)."
  type        = number
  default     = 3
  validation {
    condition     = var.delist_after_days >= 1 && var.delist_after_days <= 14 && floor(var.delist_after_days) == var.delist_after_days
    error_message = "delist_after_days must be a whole number from 1 to 14."
  }
}

variable "notification_channels" {
  description = "Existing Cloud Monitoring notification channel ids (projects/…/notificationChannels/…: Slack, PagerDuty, SMS…) every alert and the budget also notify."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "notification_channels must be ids like projects/P/notificationChannels/N."
  }
}

variable "billing_account" {
  description = "Billing account id (XXXXXX-XXXXXX-XXXXXX) for the monthly budget; empty: no budget is created."
  type        = string
  default     = ""
  validation {
    condition     = var.billing_account == "" || can(regex("^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$", var.billing_account))
    error_message = "billing_account must look like 012345-6789AB-CDEF01."
  }
}

variable "monthly_budget_usd" {
  description = "Monthly budget in US dollars (docs/deploy.md estimates ~$25/month at 10,000 symbols)."
  type        = number
  default     = 50
  validation {
    condition     = var.monthly_budget_usd >= 1 && floor(var.monthly_budget_usd) == var.monthly_budget_usd
    error_message = "monthly_budget_usd must be a whole number of dollars, at least 1."
  }
}

variable "budget_thresholds" {
  description = "Fractions of the monthly budget (actual spend) at which the budget alerts; a forecast above 100 % alerts too."
  type        = list(number)
  default     = [0.5, 0.9, 1.0]
  validation {
    condition     = length(var.budget_thresholds) > 0 && alltrue([for t in var.budget_thresholds : t > 0 && t <= 2])
    error_message = "budget_thresholds must be fractions in (0, 2]."
  }
}

variable "freshness_deadline_hours" {
  description = "Hours after its tick by which the daily run must be complete (freshness SLO alert)."
  type        = number
  default     = 3
  validation {
    condition     = var.freshness_deadline_hours >= 1 && var.freshness_deadline_hours <= 20 && floor(var.freshness_deadline_hours) == var.freshness_deadline_hours
    error_message = "freshness_deadline_hours must be a whole number from 1 to 20."
  }
}

variable "biglake_max_staleness_hours" {
  description = "How stale BigQuery's cached metadata of the panel (BigLake tables) may be, in hours."
  type        = number
  default     = 1
  validation {
    condition     = var.biglake_max_staleness_hours >= 1 && var.biglake_max_staleness_hours <= 24 && floor(var.biglake_max_staleness_hours) == var.biglake_max_staleness_hours
    error_message = "biglake_max_staleness_hours must be a whole number from 1 to 24."
  }
}
