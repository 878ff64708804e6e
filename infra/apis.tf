# The Google APIs the lake uses. Never disabled on destroy: other workloads in the project may
# depend on them, and re-enabling takes minutes.
locals {
  apis = toset([
    "artifactregistry.googleapis.com", # function images
    "bigquery.googleapis.com",
    "bigqueryconnection.googleapis.com", # BigLake tables over the panel
    "billingbudgets.googleapis.com",
    "cloudbuild.googleapis.com", # builds the function images
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "eventarc.googleapis.com", # storage triggers
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com", # functions run as Cloud Run services
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])
}

resource "google_project_service" "api" {
  for_each           = local.apis
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

data "google_project" "this" {
  project_id = var.project_id
}

# Service agents: Google-managed identities that act for these services in this project.
locals {
  pubsub_agent  = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  storage_agent = "serviceAccount:service-${data.google_project.this.number}@gs-project-accounts.iam.gserviceaccount.com"
  # uptime checks with an OIDC token present this identity
  monitoring_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-monitoring-notification.iam.gserviceaccount.com"
}
