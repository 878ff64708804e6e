"""Reconciliation: derived outputs converge on the daily objects, whatever crashed when.

Weekly/monthly bars and profiles are rebuilt from "raw object finalized" events. An event can
be lost for good: a process killed after the daily write and before the builds (embedded), an
event dropped as too old, a function that exhausted its retries. The rerun then finds the daily
object unchanged, writes nothing, publishes nothing — and the derived outputs would stay
missing (or a generation behind) forever. This service closes that hole by comparing state,
not events:

- Every derived object records the daily generation it was built from (`source_generation`);
  a derived output is due when it is missing or that generation differs from the daily
  object's current one.
- The comparison reads metadata only: one listing per prefix (`--all`, the scheduled sweep)
  or a few stats per symbol (a run's own symbols). When everything is in step, no object is
  read and nothing is written.
- Due outputs are rebuilt by the same builders the events drive (WeeklyService,
  ProfileService), with a synthetic event naming the current generation: their conditional
  writes keep a late build from overwriting a newer one, so a sweep racing the event-driven
  functions is harmless.
- A daily object that cannot be decoded is reported (`corrupt`), never rebuilt over.

Called after every embedded run (config.run_embedded), by `barlake repair`, and in the cloud by
the scheduled sweep: a `repair` request on topic ingest-requests (Cloud Scheduler job
`barlake-repair`), handled by the dispatch function, which rebuilds at most SWEEP_LIMIT symbols
per pass (its 300 s timeout; the next pass takes the rest).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from barlake.core.layout import (
    DERIVED_PREFIXES,
    PROFILE_PREFIX,
    RAW_DAILY_PREFIX,
    daily_name,
    period_name,
    profile_name,
    symbol_of_daily,
)
from barlake.messages import ObjectFinalized
from barlake.ports import ObjectInfo, ObjectStore, TransientError
from barlake.services.derived import CorruptObjectError, ProfileService, WeeklyService

log = logging.getLogger("barlake.reconcile")

# Above this many symbols a listing per prefix is cheaper than four stats per symbol.
LIST_ABOVE = 64
SWEEP_LIMIT = 1000  # symbols rebuilt per scheduled pass (~0.1 s each; dispatch's timeout 300 s)


@dataclass(frozen=True)
class Drift:
    """One symbol whose derived outputs are behind its daily object."""

    symbol: str
    generation: int  # the daily object's current generation
    due: tuple[str, ...]  # of "1wk", "1mo", "profile"


@dataclass
class ReconcileReport:
    checked: int = 0  # daily objects compared
    rebuilt: dict[str, tuple[str, ...]] = field(default_factory=dict)  # symbol → outputs
    corrupt: dict[str, str] = field(default_factory=dict)  # symbol → why it cannot be decoded
    deferred: dict[str, str] = field(default_factory=dict)  # symbol → transient error
    left: int = 0  # due, but past the pass's limit: the next pass takes them

    def to_json(self) -> dict[str, object]:
        return {
            "checked": self.checked,
            "rebuilt": {s: list(v) for s, v in sorted(self.rebuilt.items())},
            "corrupt": dict(sorted(self.corrupt.items())),
            "deferred": dict(sorted(self.deferred.items())),
            "left": self.left,
        }


def source_generation(info: ObjectInfo | None) -> int | None:
    if info is None:
        return None
    value = info.metadata.get("source_generation")
    return int(value) if value is not None and str(value).lstrip("-").isdigit() else None


def due_outputs(generation: int, derived: Mapping[str, ObjectInfo | None]) -> tuple[str, ...]:
    """The outputs ("1wk", "1mo", "profile") not built from exactly this daily generation."""
    return tuple(k for k, info in derived.items() if source_generation(info) != generation)


def _outputs(symbol: str) -> dict[str, str]:
    names = {interval: period_name(symbol, interval) for interval in DERIVED_PREFIXES}
    names["profile"] = profile_name(symbol)
    return names


@dataclass
class Reconciler:
    raw: ObjectStore
    derived: ObjectStore
    weekly: WeeklyService
    profile: ProfileService

    # ------------------------------------------------------------------ detection (metadata)

    def drift(self, symbols: Sequence[str] | None = None) -> tuple[int, list[Drift]]:
        """(daily objects compared, those whose derived outputs are due). Metadata only."""
        if symbols is None or len(symbols) > LIST_ABOVE:
            return self._drift_listed(None if symbols is None else set(symbols))
        out: list[Drift] = []
        checked = 0
        for symbol in symbols:
            daily = self.raw.stat(daily_name(symbol))
            if daily is None:
                continue
            checked += 1
            derived = {k: self.derived.stat(n) for k, n in _outputs(symbol).items()}
            due = due_outputs(daily.generation, derived)
            if due:
                out.append(Drift(symbol, daily.generation, due))
        return checked, out

    def _drift_listed(self, only: set[str] | None) -> tuple[int, list[Drift]]:
        listed: dict[str, dict[str, ObjectInfo]] = {}
        prefixes = {**DERIVED_PREFIXES, "profile": PROFILE_PREFIX}
        for kind, prefix in prefixes.items():
            listed[kind] = {info.name: info for info in self.derived.list(prefix)}
        out: list[Drift] = []
        checked = 0
        for info in self.raw.list(RAW_DAILY_PREFIX):
            symbol = symbol_of_daily(info.name)
            if symbol is None or (only is not None and symbol not in only):
                continue
            checked += 1
            derived = {k: listed[k].get(n) for k, n in _outputs(symbol).items()}
            due = due_outputs(info.generation, derived)
            if due:
                out.append(Drift(symbol, info.generation, due))
        return checked, out

    # ------------------------------------------------------------------ repair

    def reconcile(
        self, symbols: Sequence[str] | None = None, limit: int | None = None
    ) -> ReconcileReport:
        """Rebuild every due derived output of these symbols (None: the whole lake); at most
        `limit` symbols' worth (the rest are left to the next pass, and counted)."""
        checked, drifts = self.drift(symbols)
        report = ReconcileReport(checked=checked)
        if limit is not None and len(drifts) > limit:
            report.left = len(drifts) - limit
            drifts = drifts[:limit]
        for d in drifts:
            self._rebuild(d, report)
        if report.rebuilt or report.corrupt:
            log.warning(
                "reconciled %d of %d symbols (%d corrupt)",
                len(report.rebuilt),
                checked,
                len(report.corrupt),
                extra={"fields": {"outcome": "reconciled", **report.to_json()}},
            )
        return report

    def _rebuild(self, d: Drift, report: ReconcileReport) -> None:
        event = ObjectFinalized(self.raw.bucket, daily_name(d.symbol), d.generation)
        built: list[str] = []
        try:
            periods = [k for k in d.due if k in DERIVED_PREFIXES]
            if periods and self.weekly.handle(event) == "built":
                built += periods
            if "profile" in d.due and self.profile.handle(event) == "built":
                built.append("profile")
        except CorruptObjectError as exc:
            report.corrupt[d.symbol] = str(exc)
            self.profile.mark_corrupt(d.symbol, d.generation, str(exc))
            return
        except TransientError as exc:  # a newer write landed meanwhile; the next pass sees it
            report.deferred[d.symbol] = str(exc)
            return
        if built:
            report.rebuilt[d.symbol] = tuple(built)
