# The Upstash REST token lives in Secret Manager only: Terraform creates the secret, an operator
# adds its value (docs/deploy.md), and the API reads it as a secret environment variable. The
# value never passes through Terraform variables or state. The API's access is granted where
# its secret environment variables are wired (functions.tf, iam.tf).
resource "google_secret_manager_secret" "upstash_token" {
  secret_id = "barlake-upstash-token"
  replication {
    auto {}
  }
  depends_on = [google_project_service.api]
}
