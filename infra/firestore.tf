# Firestore (native mode): symbol registry, run ledger, quarantine, restatements, profiles.
resource "google_firestore_database" "state" {
  name                              = var.firestore_database
  location_id                       = var.firestore_location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "OPTIMISTIC"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  deletion_policy                   = "ABANDON" # never drop the ledger with `terraform destroy`
  depends_on                        = [google_project_service.api]
}
