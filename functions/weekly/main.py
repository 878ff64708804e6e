"""weekly: a daily object finalized in the raw bucket → its weekly and monthly bars in the
derived bucket (never the raw one, so nothing re-triggers itself)."""

import functions_framework
from cloudevents.http import CloudEvent

from barlake import cloudfn

cloudfn.configure_logging()


@functions_framework.cloud_event
def weekly(cloud_event: CloudEvent) -> None:
    cloudfn.handle("weekly", cloud_event)
