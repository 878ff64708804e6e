# Remote state in a versioned GCS bucket that Terraform does not manage itself (chicken and egg):
#   terraform init -backend-config="bucket=<state bucket>" -backend-config="prefix=barlake"
# Cloud Build passes the same two settings (substitutions _TF_STATE_BUCKET, _TF_STATE_PREFIX).
terraform {
  backend "gcs" {}
}
