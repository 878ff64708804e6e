"""Message handlers: decode one message, call one service, report the outcome.

The in-process bus calls these directly; the Cloud Functions entry points call them after
unwrapping the CloudEvent. Permanent problems (a malformed message) are logged and
acknowledged — redelivering them would never help. Anything transient raises, so the bus (or
Pub/Sub) delivers the message again; every service is idempotent, so that is always safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from barlake.messages import (
    AuditTick,
    BadMessage,
    IngestBatch,
    IngestRequest,
    ObjectFinalized,
    RunCompleted,
    is_audit_tick,
)
from barlake.ports import TransientError
from barlake.services.derived import CorruptObjectError
from barlake.services.dispatch import EmptyUniverseError

if TYPE_CHECKING:
    from barlake.config import App

log = logging.getLogger("barlake.handlers")


def dispatch(app: App, data: Mapping[str, Any], published: datetime | None = None) -> str | None:
    """published: when the request was first sent (the same on every redelivery), which names
    a scheduled run; None (the in-process bus) means now."""
    try:
        request = IngestRequest.from_json(data)
        if request.kind == "repair":  # the scheduled sweep: derived outputs reconciled
            from barlake.services.reconcile import SWEEP_LIMIT

            report = app.reconcile.reconcile(list(request.symbols) or None, SWEEP_LIMIT)
            log.info("repair sweep", extra={"fields": {"outcome": "repair", **report.to_json()}})
            return "repair"
        run = app.dispatch.handle(request, published)
    except (BadMessage, EmptyUniverseError) as exc:
        log.error("dispatch: dropping request: %s", exc)
        return None
    return run.run_id


def ingest(app: App, data: Mapping[str, Any], published: datetime | None = None) -> str | None:
    if is_audit_tick(data):
        return audit(app, data, published)
    try:
        batch = IngestBatch.from_json(data)
    except BadMessage as exc:
        log.error("ingest: dropping batch: %s", exc)
        return None
    record = app.ingest.handle(batch)
    failed = [o for o in record.outcomes if o.status == "failed"]
    if failed:
        # Structured fields for the "ingest failures" log-based metric (infra/monitoring.tf).
        fields = {
            "function": "ingest",
            "outcome": "symbols_failed",
            "run_id": batch.run_id,
            "batch_id": batch.batch_id,
            "failed": len(failed),
            "errors": {o.symbol: o.error_kind for o in failed},
        }
        log.warning(
            "ingest %s: %d of %d symbols failed",
            batch.batch_id,
            len(failed),
            len(record.outcomes),
            extra={"fields": fields},
        )
    retry = [o.symbol for o in record.outcomes if o.retryable]
    if not retry:  # the last batch to finish sees the run complete and announces it
        from barlake.services.panel import announce_if_complete

        announce_if_complete(app.state, app.bus, app.settings.run_completed_topic, batch.run_id)
    if retry:
        # Recorded first, then raised: the message comes back (idempotent) until the retry
        # policy gives up and dead-letters it; the run stays incomplete meanwhile.
        raise TransientError(f"batch {batch.batch_id}: retryable failures for {', '.join(retry)}")
    return batch.batch_id


def audit(app: App, data: Mapping[str, Any], published: datetime | None = None) -> str | None:
    """The scheduled audit tick: dispatch today's slice as an audit run (services/audit.py)."""
    try:
        run = app.audit.tick(AuditTick.from_json(data), published)
    except (BadMessage, EmptyUniverseError) as exc:
        log.error("audit: dropping tick: %s", exc)
        return None
    return run.run_id if run is not None else None


def _object_event(data: Mapping[str, Any]) -> ObjectFinalized | None:
    try:
        return ObjectFinalized.from_json(data)
    except BadMessage as exc:
        log.error("dropping object event: %s", exc)
        return None


def _derived(build: Callable[[ObjectFinalized], str], data: Mapping[str, Any]) -> str | None:
    event = _object_event(data)
    if event is None:
        return None
    try:
        return build(event)
    except CorruptObjectError as exc:  # a daily object that cannot be decoded: permanent
        log.error("%s: cannot build from %s: %s", build.__qualname__, event.name, exc)
        return "invalid"


def weekly(app: App, data: Mapping[str, Any]) -> str | None:
    return _derived(app.weekly.handle, data)


def profile(app: App, data: Mapping[str, Any]) -> str | None:
    result = _derived(app.profile.handle, data)
    if result in ("built", "duplicate"):  # the symbol's tier follows its bars (services/tiers.py)
        from barlake.core.layout import symbol_of_daily

        symbol = symbol_of_daily(str(data.get("name", "")))
        if symbol is not None:
            app.tiers.refresh(symbol)
    return result


def panel(app: App, data: Mapping[str, Any]) -> str | None:
    """A run completed: bring the cross-sectional panel up to date (barlake.services.panel)."""
    try:
        event = RunCompleted.from_json(data)
    except BadMessage as exc:
        log.error("panel: dropping message: %s", exc)
        return None
    return app.panel.handle(event)
