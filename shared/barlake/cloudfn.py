"""What every Cloud Function entry point shares: decode the event, apply the age cutoff, call
one handler, log one structured line. `functions/<name>/main.py` is a three-line wrapper.

Events arrive in two shapes that carry the same thing:
- a Pub/Sub message (`google.cloud.pubsub.topic.v1.messagePublished`; data `{"message": …}`),
  which is what Eventarc delivers and what functions-framework makes of a push envelope from
  the Pub/Sub emulator. For the derived functions that message may be a GCS notification
  (attributes bucketId/objectId/objectGeneration, data = the object resource), as the local
  stack's fake-gcs-server sends;
- an Eventarc storage event (`google.cloud.storage.object.v1.finalized`), whose data is the
  object resource itself.

Outcomes: an error known to be permanent (a malformed message, an unknown symbol, an object
that cannot be decoded) is recorded by the handler and acknowledged; anything else raises (the
function answers 500 and Pub/Sub or Eventarc retries with backoff): transient errors by
design, and unexpected ones too, since retrying is the safe default for an idempotent handler.
Nothing retries forever: an event older than BARLAKE_MAX_EVENT_AGE_SECONDS is acknowledged
without work, and batches dead-letter after the subscription's max delivery attempts.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from barlake import handlers, timing
from barlake.messages import BadMessage

if TYPE_CHECKING:
    from barlake.config import App

log = logging.getLogger("barlake.function")

PUBSUB_EVENT = "google.cloud.pubsub.topic.v1.messagePublished"
STORAGE_FINALIZED = "google.cloud.storage.object.v1.finalized"


@dataclass(frozen=True)
class Event:
    """One decoded delivery: the JSON payload, its attributes, and when it was first sent."""

    data: Mapping[str, Any]
    attributes: Mapping[str, str] = field(default_factory=dict)
    time: datetime | None = None
    id: str = ""


HANDLERS: dict[str, Callable[[App, Mapping[str, Any], Event], str | None]] = {
    # a scheduled run is named after the publish day, which every redelivery shares
    "dispatch": lambda app, data, event: handlers.dispatch(app, data, event.time),
    # the audit tick, like a scheduled request, is named after its publish day
    "ingest": lambda app, data, event: handlers.ingest(app, data, event.time),
    "weekly": lambda app, data, event: handlers.weekly(app, data),
    "profile": lambda app, data, event: handlers.profile(app, data),
    "panel": lambda app, data, event: handlers.panel(app, data),
}


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def decode(event_type: str, attrs: Mapping[str, Any], data: Any) -> Event:
    """A CloudEvent's type, context attributes and data → Event. Raises BadMessage."""
    when = _time(attrs.get("time"))
    event_id = str(attrs.get("id") or "")
    if event_type == STORAGE_FINALIZED:
        if not isinstance(data, Mapping):
            raise BadMessage("storage event without an object resource")
        return Event(data, {"eventType": "OBJECT_FINALIZE"}, when, event_id)
    if event_type != PUBSUB_EVENT:
        raise BadMessage(f"unexpected event type {event_type!r}")
    message = data.get("message") if isinstance(data, Mapping) else None
    if not isinstance(message, Mapping):
        raise BadMessage("Pub/Sub event without a message")
    try:
        body = json.loads(base64.b64decode(message.get("data") or "", validate=True))
    except (binascii.Error, ValueError) as exc:  # JSONDecodeError and UnicodeError included
        raise BadMessage(f"message {message.get('messageId')}: data is not JSON: {exc}") from exc
    attributes = {str(k): str(v) for k, v in (message.get("attributes") or {}).items()}
    when = _time(message.get("publishTime")) or when
    return Event(body, attributes, when, str(message.get("messageId") or event_id))


def too_old(event: Event, now: datetime, max_age_seconds: int) -> bool:
    return event.time is not None and (now - event.time).total_seconds() > max_age_seconds


# ------------------------------------------------------------------------ the per-instance app

_app: App | None = None
_lock = threading.Lock()


def app() -> App:
    """Built once per function instance from the environment (clients are reused across
    invocations, as Google's samples do) and never at import time, so a bad setting shows up
    as a logged error on the first event rather than a crash loop without context."""
    global _app
    with _lock:
        if _app is None:
            from barlake.config import Settings, build_app

            _app = build_app(Settings.from_env(), instrument=True)
        return _app


def handle(name: str, cloud_event: Any, app_: App | None = None) -> str | None:
    """Run function `name` on one CloudEvent (a cloudevents.http.CloudEvent or a mapping with
    its attributes and a "data" key). Returns the handler's result; raises only to be retried."""
    app_ = app_ or app()
    attrs = _attributes(cloud_event)
    try:
        event = decode(str(attrs.get("type", "")), attrs, _data(cloud_event))
        data = _object_resource(event) if name in ("weekly", "profile") else event.data
    except BadMessage as exc:
        _log(name, "dropped", reason=str(exc), level=logging.ERROR)
        return None
    if too_old(event, app_.clock(), int(app_.settings.max_event_age_seconds)):
        _log(name, "too_old", event_id=event.id, published=event.time, level=logging.ERROR)
        return None
    where = {"object": data.get("name")} if name in ("weekly", "profile") else {}
    started, before = time.perf_counter(), timing.snapshot()
    try:
        result = HANDLERS[name](app_, data, event)
    except Exception as exc:
        _log(name, "retry", event_id=event.id, error=f"{type(exc).__name__}: {exc}")
        raise
    spent = {f"{k}_ms": round(v * 1000, 3) for k, v in timing.since(before).items()}
    ms = round((time.perf_counter() - started) * 1000, 3)
    _log(
        name, "done", event_id=event.id, **where, result=result, ms=ms, **spent, level=logging.INFO
    )
    return result


def _object_resource(event: Event) -> Mapping[str, Any]:
    """The object resource of a finalize event, whether Eventarc delivered it directly or a GCS
    Pub/Sub notification carried it (attributes name the object; data is the resource)."""
    attrs = event.attributes
    if attrs.get("eventType") not in (None, "OBJECT_FINALIZE"):
        raise BadMessage(f"not a finalize event: {attrs.get('eventType')}")
    if not isinstance(event.data, Mapping):
        raise BadMessage(f"an object event must be a JSON object, got {type(event.data).__name__}")
    data = dict(event.data)
    data.setdefault("bucket", attrs.get("bucketId"))
    data.setdefault("name", attrs.get("objectId"))
    data.setdefault("generation", attrs.get("objectGeneration"))
    return data


def _attributes(cloud_event: Any) -> Mapping[str, Any]:
    if hasattr(cloud_event, "get_attributes"):
        return dict(cloud_event.get_attributes())
    return {k: v for k, v in dict(cloud_event).items() if k != "data"}


def _data(cloud_event: Any) -> Any:
    if hasattr(cloud_event, "get_data"):
        return cloud_event.get_data()
    return dict(cloud_event).get("data")


# ------------------------------------------------------------------------ structured logs


class JsonFormatter(logging.Formatter):
    """One JSON object per line: Cloud Logging reads `severity` and `message` and keeps the
    rest as jsonPayload fields, which the log-based metrics in infra/ filter on
    (jsonPayload.function, jsonPayload.outcome)."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        payload.update(getattr(record, "fields", {}))
        return json.dumps(payload, default=str, separators=(",", ":"))


def configure_logging(stream: IO[str] | None = None) -> logging.Handler | None:
    """Called by each functions/<name>/main.py at import: JSON lines on stdout, when running
    as a function (Cloud Run sets K_SERVICE; so does `barlake stack`). Elsewhere (tests that
    load a function in-process) logging is left as the host configured it."""
    if stream is None and not os.environ.get("K_SERVICE"):
        return None
    root = logging.getLogger()
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return handler


def _log(name: str, outcome: str, level: int = logging.WARNING, **fields: Any) -> None:
    fields = {"function": name, "outcome": outcome, **fields}
    text = " ".join(f"{k}={v}" for k, v in fields.items())
    log.log(level, "%s", text, extra={"fields": fields})
