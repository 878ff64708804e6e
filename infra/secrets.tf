# The Upstash REST token lives in Secret Manager only: Terraform creates the secret, an operator
# adds its value (docs/deploy.md), and the API reads it as a secret environment variable. The
# value never passes through Terraform variables or state.
resource "google_secret_manager_secret" "upstash_token" {
  secret_id = "barlake-upstash-token"
  replication {
    auto {}
  }
  depends_on = [google_project_service.api]
}

resource "google_secret_manager_secret_iam_member" "api_upstash_token" {
  count     = var.cache_backend == "upstash" ? 1 : 0
  secret_id = google_secret_manager_secret.upstash_token.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.fn["api"].email}"
}
