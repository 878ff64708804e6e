"""Derived builds on "raw object finalized": weekly+monthly bars, and the data-quality profile.

Both act only on the event's own generation of the daily object:
- the derived object records the generation it was built from (`source_generation`); an event
  whose generation is not newer than that is a duplicate (or stale) and is skipped after one
  metadata request, before the daily object is read;
- an event older than the daily object's current generation is stale: a newer event will
  follow, so the build is skipped (one read, no write);
- the derived write is conditional on the derived object's generation, so two builds racing on
  different raw generations cannot let the older one win.
Derived outputs go to the derived bucket, which has no triggers: nothing re-triggers itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from barlake.core.aggregate import aggregate
from barlake.core.calendar import calendar_for
from barlake.core.codec import decode_bars, decode_daily, encode_periods
from barlake.core.layout import DERIVED_PREFIXES, period_name, profile_name, symbol_of_daily
from barlake.core.profile import build_profile
from barlake.messages import ObjectFinalized
from barlake.ports import (
    ObjectInfo,
    ObjectStore,
    PreconditionFailed,
    StateStore,
    StoredObject,
    TransientError,
)


class CorruptObjectError(ValueError):
    """The daily object cannot be decoded: permanent (a rebuild would fail the same way)."""


def decoded(name: str, decode: Callable[[bytes], Any], data: bytes) -> Any:
    """decode(data), or CorruptObjectError naming the object: every reader of a stored object
    (ingest, the builders, reads, repair) tells a corrupt object from other errors the same way."""
    try:
        return decode(data)
    # Arrow/Parquet/JSON errors on bad bytes; OSError: a corrupt compressed page
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise CorruptObjectError(f"{name}: {type(exc).__name__}: {exc}") from exc


class SourceNotYetVisibleError(TransientError):
    """The event names a generation newer than the store shows: retry later (transient)."""


def _source(raw: ObjectStore, event: ObjectFinalized) -> tuple[str, StoredObject] | None:
    """The event's symbol and its daily object at exactly the event's generation; None when the
    event is not about a daily object of this bucket, or is stale (the object has moved on, or
    is gone). One read: the bytes and the generation they belong to come back together."""
    symbol = symbol_of_daily(event.name)
    if symbol is None or event.bucket != raw.bucket:
        return None
    obj = raw.read(event.name)
    if obj is None or obj.info.generation > event.generation:
        return None
    if obj.info.generation < event.generation:
        raise SourceNotYetVisibleError(
            f"{event.name}: generation {event.generation} not visible yet"
        )
    return symbol, obj


def _source_generation(info: ObjectInfo | None) -> int:
    """The raw generation a derived object was built from (-1: none yet)."""
    return int(info.metadata.get("source_generation", -1)) if info is not None else -1


def _already(built_from: int, event: ObjectFinalized) -> str:
    """Nothing to do: built from a newer object ("stale" event) or from this one (a
    "duplicate" delivery)."""
    return "stale" if built_from > event.generation else "duplicate"


def _write_if_newer(
    store: ObjectStore,
    name: str,
    data: bytes,
    source_generation: int,
    content_type: str,
    current: ObjectInfo | None,
) -> bool:
    """Write unless the derived object already reflects this or a newer raw generation.
    `current` is what the caller already saw of it (saves a request); re-read on conflict."""
    for attempt in range(8):
        if attempt:
            current = store.stat(name)
        if _source_generation(current) >= source_generation:
            return False
        meta = {"source_generation": str(source_generation), "content_type": content_type}
        try:
            store.write(
                name, data, if_generation_match=current.generation if current else 0, metadata=meta
            )
            return True
        except PreconditionFailed:
            continue
    raise TransientError(f"{name}: repeated conflicts writing a derived object")


def complete_through(symbol: str, last: date) -> date:
    """The last calendar day after which no session of the symbol can join its last bar's
    period: the day before the next session. Periods ending after it are provisional."""
    return calendar_for(symbol).next_session(last) - timedelta(days=1)


@dataclass
class WeeklyService:
    raw: ObjectStore
    derived: ObjectStore

    def handle(self, event: ObjectFinalized) -> str:
        symbol = symbol_of_daily(event.name)
        if symbol is None or event.bucket != self.raw.bucket:
            return "stale"
        current = {i: self.derived.stat(period_name(symbol, i)) for i in DERIVED_PREFIXES}
        todo = [i for i in DERIVED_PREFIXES if _source_generation(current[i]) < event.generation]
        if not todo:
            return _already(min(_source_generation(c) for c in current.values()), event)
        found = _source(self.raw, event)
        if found is None:
            return "stale"
        _, obj = found
        bars = decoded(event.name, decode_bars, obj.data)  # the actions are not needed here
        if bars.num_rows == 0:
            return "empty"
        through = complete_through(symbol, bars.column("date")[-1].as_py())
        wrote = False
        for interval in todo:
            periods = aggregate(bars, interval, through)
            data = encode_periods(periods, event.generation)
            wrote |= _write_if_newer(
                self.derived,
                period_name(symbol, interval),
                data,
                event.generation,
                "application/vnd.apache.parquet",
                current[interval],
            )
        return "built" if wrote else "duplicate"


@dataclass
class ProfileService:
    raw: ObjectStore
    derived: ObjectStore
    state: StateStore
    clock: Callable[[], datetime]

    def handle(self, event: ObjectFinalized) -> str:
        symbol = symbol_of_daily(event.name)
        if symbol is None or event.bucket != self.raw.bucket:
            return "stale"
        name = profile_name(symbol)
        current = self.derived.stat(name)
        if _source_generation(current) >= event.generation:
            return _already(_source_generation(current), event)
        found = _source(self.raw, event)
        if found is None:
            return "stale"
        _, obj = found
        try:
            bars, actions = decoded(event.name, decode_daily, obj.data)
        except CorruptObjectError as exc:
            self.mark_corrupt(symbol, obj.info.generation, str(exc))
            raise
        restatements = self.state.restatements(symbol)
        last = restatements[-1] if restatements else None
        profile = build_profile(
            bars,
            symbol=symbol,
            as_of=self.clock().date(),
            generation=obj.info.generation,
            object_bytes=obj.info.size,
            quarantined=len(self.state.quarantine(symbol)),
            last_restatement=(
                {
                    "detected_at": last.detected_at.isoformat(),
                    "kinds": list(last.kinds),
                    "evidence": dict(last.evidence),
                    "run_id": last.run_id,
                }
                if last
                else None
            ),
            actions=actions,
            audit=_audit_json(self.state, symbol),
        )
        previous = self.state.get_profile(symbol)  # a reconciliation outlives rebuilds
        if previous is not None and "reconciliation" in previous:
            profile["reconciliation"] = previous["reconciliation"]
        body = json.dumps(profile, sort_keys=True, default=str).encode()
        # The state record first (it keeps the highest generation, so a repeat is harmless),
        # the derived object last: a retry after a failure in between finds the object not yet
        # built and does both again, instead of "duplicate" with the record lost.
        self.state.put_profile(symbol, profile)
        written = _write_if_newer(
            self.derived, name, body, obj.info.generation, "application/json", current
        )
        return "built" if written else "duplicate"

    def mark_corrupt(self, symbol: str, generation: int, error: str) -> None:
        """Say so in the profile (state record and object): a daily object that cannot be
        decoded is reported by the profile, /v1/symbols and /v1/health until it is repaired.
        Built "from" that generation, so the next good generation replaces it."""
        profile = corrupt_profile(symbol, generation, error, self.clock())
        self.state.put_profile(symbol, profile)
        name = profile_name(symbol)
        body = json.dumps(profile, sort_keys=True, default=str).encode()
        _write_if_newer(
            self.derived, name, body, generation, "application/json", self.derived.stat(name)
        )


def corrupt_profile(symbol: str, generation: int, error: str, now: datetime) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "generation": generation,
        "as_of": now.date().isoformat(),
        "corrupt": {
            "generation": generation,
            "error": error[:500],
            "detected_at": now.isoformat(),
            "repair": f"barlake repair {symbol}",
        },
    }


def _audit_json(state: StateStore, symbol: str) -> dict[str, Any] | None:
    """The symbol's history audit record for its profile (core/profile.audit_summary)."""
    record = state.get_audits([symbol]).get(symbol)
    return record.to_json() if record is not None else None
