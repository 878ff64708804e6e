"""Derived builds on "raw object finalized": weekly+monthly bars, and the data-quality profile.

Both act only on the event's own generation of the daily object:
- an event older than the object's current generation is stale: a newer event will follow, so
  the build is skipped (no read of the derived side, no write);
- the derived object records the generation it was built from (`source_generation`); an event
  whose generation is not newer than that is a duplicate and is skipped;
- the derived write is conditional on the derived object's generation, so two builds racing on
  different raw generations cannot let the older one win.
Derived outputs go to the derived bucket, which has no triggers: nothing re-triggers itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

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


class SourceNotYetVisibleError(TransientError):
    """The event names a generation newer than the store shows: retry later (transient)."""


def _check(raw: ObjectStore, event: ObjectFinalized) -> str | None:
    """The event's symbol if it names a daily object still at the event's generation, or None."""
    symbol = symbol_of_daily(event.name)
    if symbol is None or event.bucket != raw.bucket:
        return None
    current = raw.stat(event.name)
    if current is None or current.generation > event.generation:
        return None
    if current.generation < event.generation:
        raise SourceNotYetVisibleError(
            f"{event.name}: generation {event.generation} not visible yet"
        )
    return symbol


def _read_exact(raw: ObjectStore, event: ObjectFinalized) -> StoredObject | None:
    obj = raw.read(event.name)
    return obj if obj is not None and obj.info.generation == event.generation else None


def _source_generation(info: ObjectInfo | None) -> int:
    """The raw generation a derived object was built from (-1: none yet)."""
    return int(info.metadata.get("source_generation", -1)) if info is not None else -1


def _built_from(store: ObjectStore, name: str) -> int:
    return _source_generation(store.stat(name))


def _write_if_newer(
    store: ObjectStore, name: str, data: bytes, source_generation: int, content_type: str
) -> bool:
    """Write unless the derived object already reflects this or a newer raw generation."""
    for _ in range(8):
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
        symbol = _check(self.raw, event)
        if symbol is None:
            return "stale"
        todo = [
            i
            for i in DERIVED_PREFIXES
            if _built_from(self.derived, period_name(symbol, i)) < event.generation
        ]
        if not todo:
            return "duplicate"
        obj = _read_exact(self.raw, event)
        if obj is None:
            return "stale"
        bars = decode_bars(obj.data)  # the actions are not needed here
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
            )
        return "built" if wrote else "duplicate"


@dataclass
class ProfileService:
    raw: ObjectStore
    derived: ObjectStore
    state: StateStore
    clock: Callable[[], datetime]

    def handle(self, event: ObjectFinalized) -> str:
        symbol = _check(self.raw, event)
        if symbol is None:
            return "stale"
        name = profile_name(symbol)
        if _built_from(self.derived, name) >= event.generation:
            return "duplicate"
        obj = _read_exact(self.raw, event)
        if obj is None:
            return "stale"
        bars, actions = decode_daily(obj.data)
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
        )
        body = json.dumps(profile, sort_keys=True, default=str).encode()
        if not _write_if_newer(self.derived, name, body, obj.info.generation, "application/json"):
            return "duplicate"
        self.state.put_profile(symbol, profile)
        return "built"
