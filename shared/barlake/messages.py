"""Versioned JSON messages: the only shapes that cross a topic.

Every message carries `version`; a handler refuses a version it does not know with
`BadMessage` (a permanent error: acknowledged and recorded, never retried). Delivery may repeat
or reorder, so every field needed to act idempotently (run_id, batch_id) travels in the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from barlake.core.schema import InvalidSymbolError, normalize_symbol

VERSION = 1

# Topic names: the same strings in Terraform, the local stack and the embedded bus.
INGEST_REQUESTS = "ingest-requests"
INGEST_BATCHES = "ingest-batches"
RAW_OBJECT_FINALIZED = "raw-object-finalized"
DEAD_LETTER = "dead-letter"
RUN_COMPLETED = "run-completed"

# "audit": the deep audit (barlake.services.audit); "repair": the reconciliation sweep
# (barlake.services.reconcile), no ingest.
REQUEST_KINDS = ("scheduled", "backfill", "manual", "audit", "repair")


class BadMessage(ValueError):
    """A message that can never be processed (unknown version, bad field): do not retry."""


def _version(data: Any) -> None:
    if not isinstance(data, Mapping):
        raise BadMessage(f"a message must be a JSON object, got {type(data).__name__}")
    v = data.get("version")
    if v != VERSION:
        raise BadMessage(f"unsupported message version {v!r} (this code speaks {VERSION})")


def _date(value: Any, name: str) -> date | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise BadMessage(f"{name}: not an ISO date: {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise BadMessage(f"{name}: not an ISO date: {value!r}") from exc


def _dates(data: Mapping[str, Any]) -> tuple[date | None, date | None]:
    start, end = _date(data.get("start"), "start"), _date(data.get("end"), "end")
    if start and end and start > end:
        raise BadMessage(f"start {start} is after end {end}")
    return start, end


def _text(data: Mapping[str, Any], name: str, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise BadMessage(f"missing field {name!r}")
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadMessage(f"{name} must be a non-empty string")
    return value


def _flag(data: Mapping[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise BadMessage(f"{name} must be true or false, got {value!r}")
    return value


def _symbols(values: Any) -> tuple[str, ...]:
    if values is None:
        return ()
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
        raise BadMessage("symbols must be a list of strings")
    try:
        return tuple(dict.fromkeys(normalize_symbol(str(s)) for s in values))
    except InvalidSymbolError as exc:
        raise BadMessage(str(exc)) from exc


def _wire(message: Any) -> dict[str, Any]:
    """A message dataclass as JSON-ready fields: tuples → lists, dates → ISO strings."""
    out: dict[str, Any] = {}
    for key, value in asdict(message).items():
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, date):
            value = value.isoformat()
        out[key] = value
    return out


@dataclass(frozen=True)
class IngestRequest:
    """Starts a run: the scheduler's daily tick, a backfill, or a manual run.

    With no symbols, the run covers the registry's `universe`. A scheduled tick carries no
    run_id: dispatch names the run after the trading day, so a repeated tick is the same run.
    """

    kind: str = "scheduled"
    run_id: str | None = None
    symbols: tuple[str, ...] = ()
    universe: str | None = None
    start: date | None = None
    end: date | None = None
    full: bool = False
    version: int = VERSION

    def to_json(self) -> dict[str, Any]:
        return _wire(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IngestRequest:
        _version(data)
        kind = data.get("kind", "scheduled")
        if kind not in REQUEST_KINDS:
            raise BadMessage(f"unknown request kind {kind!r}")
        start, end = _dates(data)
        run_id = _text(data, "run_id")
        if run_id is None and kind not in ("scheduled", "repair"):
            # Without an id a redelivered backfill would start a second run.
            raise BadMessage(f"a {kind} request needs a run_id")
        return cls(
            kind=kind,
            run_id=run_id,
            symbols=_symbols(data.get("symbols")),
            universe=_text(data, "universe"),
            start=start,
            end=end,
            full=_flag(data, "full"),
        )


@dataclass(frozen=True)
class IngestBatch:
    run_id: str
    batch_id: str
    symbols: tuple[str, ...]
    start: date | None = None
    end: date | None = None
    full: bool = False
    audit: bool = False  # a deep audit: compare the whole history bar for bar (history.py)
    version: int = VERSION

    def to_json(self) -> dict[str, Any]:
        return _wire(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IngestBatch:
        _version(data)
        start, end = _dates(data)
        return cls(
            run_id=_text(data, "run_id", required=True) or "",
            batch_id=_text(data, "batch_id", required=True) or "",
            symbols=_symbols(data.get("symbols")),
            start=start,
            end=end,
            full=_flag(data, "full"),
            audit=_flag(data, "audit"),
        )


@dataclass(frozen=True)
class AuditTick:
    """The scheduled deep audit (services/audit.py): published on the ingest-batches topic by
    its own Cloud Scheduler job and handled by the ingest function, which dispatches the day's
    slice of the universe as an audit run."""

    kind: str = "audit"
    universe: str | None = None
    version: int = VERSION

    def to_json(self) -> dict[str, Any]:
        return _wire(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditTick:
        _version(data)
        if data.get("kind") != "audit":
            raise BadMessage(f"not an audit tick: kind {data.get('kind')!r}")
        return cls(universe=_text(data, "universe"))


def is_audit_tick(data: Any) -> bool:
    """Whether a message on the ingest-batches topic is the audit tick, not a batch."""
    return isinstance(data, Mapping) and data.get("kind") == "audit"


@dataclass(frozen=True)
class ObjectFinalized:
    """A raw object was written: GCS's object resource, reduced to what handlers need."""

    bucket: str
    name: str
    generation: int
    metadata: Mapping[str, str] = field(default_factory=dict)
    version: int = VERSION

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "metadata": dict(self.metadata), "generation": str(self.generation)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ObjectFinalized:
        """Accepts our own message and GCS's object resource (generation is a string there)."""
        if not isinstance(data, Mapping):
            raise BadMessage(f"an object event must be a JSON object, got {type(data).__name__}")
        generation = data.get("generation")
        if isinstance(generation, str) and generation.isascii() and generation.isdigit():
            generation = int(generation)
        if not isinstance(generation, int) or isinstance(generation, bool):
            raise BadMessage(f"not an object event: generation {generation!r}")
        try:
            return cls(
                bucket=str(data["bucket"]),
                name=str(data["name"]),
                generation=generation,
                metadata=dict(data.get("metadata") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadMessage(f"not an object event: {exc}") from exc


@dataclass(frozen=True)
class RunCompleted:
    """The run ledger shows every batch of a run done: the panel function builds on it."""

    run_id: str
    version: int = VERSION

    def to_json(self) -> dict[str, Any]:
        return _wire(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunCompleted:
        _version(data)
        return cls(run_id=_text(data, "run_id", required=True) or "")
