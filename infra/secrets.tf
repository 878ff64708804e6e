# The Upstash REST token and the API keys live in Secret Manager only: Terraform creates the
# secrets, an operator adds their values (docs/deploy.md), and the functions read them as
# secret environment variables (functions.tf). The values never pass through Terraform
# variables or state. Each function that reads a secret gets secretAccessor on that secret
# alone: the token for the api and the writers that announce generations (ingest, weekly,
# profile, and dispatch's repair sweep), the keys for the api.
resource "google_secret_manager_secret" "upstash_token" {
  secret_id = "barlake-upstash-token"
  replication {
    auto {}
  }
  depends_on = [google_project_service.api]
}

resource "google_secret_manager_secret" "api_keys" {
  secret_id = "barlake-api-keys"
  replication {
    auto {}
  }
  depends_on = [google_project_service.api]
}

resource "google_secret_manager_secret_iam_member" "upstash_token_dispatch" {
  secret_id = google_secret_manager_secret.upstash_token.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.fn["dispatch"].email}"
}

resource "google_secret_manager_secret_iam_member" "upstash_token_ingest" {
  secret_id = google_secret_manager_secret.upstash_token.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.fn["ingest"].email}"
}

resource "google_secret_manager_secret_iam_member" "upstash_token_weekly" {
  secret_id = google_secret_manager_secret.upstash_token.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.fn["weekly"].email}"
}

resource "google_secret_manager_secret_iam_member" "upstash_token_profile" {
  secret_id = google_secret_manager_secret.upstash_token.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.fn["profile"].email}"
}

resource "google_secret_manager_secret_iam_member" "upstash_token_api" {
  secret_id = google_secret_manager_secret.upstash_token.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.fn["api"].email}"
}

resource "google_secret_manager_secret_iam_member" "api_keys_api" {
  secret_id = google_secret_manager_secret.api_keys.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.fn["api"].email}"
}

# The keys of the fallback bar providers (README "Providers"): read by ingest alone, the only
# function that fetches bars. Each needs a version before ingest can start; a provider that is
# not used gets a placeholder (docs/deploy.md), which it would answer with an auth error.
resource "google_secret_manager_secret" "tiingo_token" {
  secret_id = "barlake-tiingo-token"
  replication {
    auto {}
  }
  depends_on = [google_project_service.api]
}

resource "google_secret_manager_secret" "alphavantage_key" {
  secret_id = "barlake-alphavantage-key"
  replication {
    auto {}
  }
  depends_on = [google_project_service.api]
}

resource "google_secret_manager_secret" "polygon_key" {
  secret_id = "barlake-polygon-key"
  replication {
    auto {}
  }
  depends_on = [google_project_service.api]
}

resource "google_secret_manager_secret_iam_member" "tiingo_token_ingest" {
  secret_id = google_secret_manager_secret.tiingo_token.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.fn["ingest"].email}"
}

resource "google_secret_manager_secret_iam_member" "alphavantage_key_ingest" {
  secret_id = google_secret_manager_secret.alphavantage_key.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.fn["ingest"].email}"
}

resource "google_secret_manager_secret_iam_member" "polygon_key_ingest" {
  secret_id = google_secret_manager_secret.polygon_key.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.fn["ingest"].email}"
}
