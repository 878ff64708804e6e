"""dispatch: a run request (Cloud Scheduler tick or CLI backfill) on topic ingest-requests →
the run ledger and one message per batch on ingest-batches."""

import functions_framework
from cloudevents.http import CloudEvent

from barlake import cloudfn

cloudfn.configure_logging()


@functions_framework.cloud_event
def dispatch(cloud_event: CloudEvent) -> None:
    cloudfn.handle("dispatch", cloud_event)
