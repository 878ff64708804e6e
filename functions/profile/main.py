"""profile: a daily object finalized in the raw bucket → its data-quality profile (derived
bucket) and inventory record (state store)."""

import functions_framework
from cloudevents.http import CloudEvent

from barlake import cloudfn

cloudfn.configure_logging()


@functions_framework.cloud_event
def profile(cloud_event: CloudEvent) -> None:
    cloudfn.handle("profile", cloud_event)
