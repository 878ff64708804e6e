"""Reconcile the lake against a second provider: `barlake reconcile SYMBOLS… --against tiingo`.

For each symbol: the stored daily object, the other provider's bars for the same window (from
the first stored date, or `start`), validated as the ingest validates them (in-progress and
refused rows set aside), then core.crosscheck names every disagreement beyond tolerance. The
report is kept as the symbol profile's `reconciliation` (the state record and the derived
profile object the API serves), so `barlake show --profile` and `GET /v1/profiles/{symbol}` show
the last one; the profile service carries it over when it rebuilds the profile. Nothing in the
lake's bars changes: a reconciliation is evidence, not a correction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from barlake.core.calendar import calendar_for
from barlake.core.codec import decode_daily
from barlake.core.crosscheck import reconcile
from barlake.core.layout import daily_name, profile_name
from barlake.core.validate import validate
from barlake.ports import ObjectStore, PreconditionFailed, Provider, StateStore

RECONCILIATION_KEY = "reconciliation"


@dataclass
class ReconcileService:
    raw: ObjectStore
    derived: ObjectStore
    state: StateStore
    clock: Callable[[], datetime]

    def run(
        self, symbols: Sequence[str], against: Provider, start: date | None = None
    ) -> dict[str, dict[str, Any]]:
        """Each symbol's report ({"error": …} when it could not be compared)."""
        now = self.clock()
        reports: dict[str, dict[str, Any]] = {}
        stored: dict[str, tuple[Any, Any]] = {}
        for symbol in symbols:
            obj = self.raw.read(daily_name(symbol))
            if obj is None:
                reports[symbol] = {"error": "no bars stored"}
                continue
            stored[symbol] = decode_daily(obj.data)
        windows: dict[date | None, list[str]] = {}
        for symbol, (bars, _) in stored.items():
            first = bars.column("date")[0].as_py() if bars.num_rows else None
            windows.setdefault(start or first, []).append(symbol)
        for window_start, group in windows.items():
            answers = against.fetch(group, window_start, None)
            for symbol in group:
                base = {"against": against.name, "checked_at": now.isoformat()}
                result = answers.get(symbol)
                if result is None or result.error is not None or result.bars is None:
                    error = result.error if result is not None else None
                    reports[symbol] = {
                        **base,
                        "error": f"{error.kind}: {error.message}" if error else "no answer",
                    }
                    continue
                checked = validate(
                    result.bars,
                    calendar=calendar_for(symbol),
                    today=(now + timedelta(hours=14)).date(),
                    as_of=result.as_of,
                )
                bars, actions = stored[symbol]
                if window_start is not None:
                    bars = bars.filter(
                        pc.greater_equal(bars["date"], pa.scalar(window_start, pa.date32()))
                    )
                found = reconcile(
                    bars, actions, checked.good, result.actions or actions.schema.empty_table()
                )
                reports[symbol] = {**base, **found}
        for symbol, report in reports.items():
            if "against" in report:
                self._keep(symbol, report)
        return reports

    def _keep(self, symbol: str, report: dict[str, Any]) -> None:
        """The report into the symbol's profile: the state record and the derived object."""
        profile = self.state.get_profile(symbol)
        if profile is not None:
            self.state.put_profile(symbol, {**profile, RECONCILIATION_KEY: report})
        name = profile_name(symbol)
        for _ in range(5):
            obj = self.derived.read(name)
            if obj is None:
                return
            body = {**json.loads(obj.data), RECONCILIATION_KEY: report}
            try:
                self.derived.write(
                    name,
                    json.dumps(body, sort_keys=True, default=str).encode(),
                    if_generation_match=obj.info.generation,
                    metadata=dict(obj.info.metadata),
                )
                return
            except PreconditionFailed:
                continue  # the profile was rebuilt meanwhile: it carried ours over, or retry
