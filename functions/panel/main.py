"""panel: a run completed (topic run-completed) → the cross-sectional panel in the derived
bucket brought up to date, only the partitions the run touched (barlake.services.panel)."""

import functions_framework
from cloudevents.http import CloudEvent

from barlake import cloudfn

cloudfn.configure_logging()


@functions_framework.cloud_event
def panel(cloud_event: CloudEvent) -> None:
    cloudfn.handle("panel", cloud_event)
