"""ingest: one batch from topic ingest-batches → fetch, validate, merge, conditional write of
each symbol's daily object in the raw bucket; outcomes in the run ledger."""

import functions_framework
from cloudevents.http import CloudEvent

from barlake import cloudfn

cloudfn.configure_logging()


@functions_framework.cloud_event
def ingest(cloud_event: CloudEvent) -> None:
    cloudfn.handle("ingest", cloud_event)
