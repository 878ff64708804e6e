"""Read: bars, profiles, inventory and run status — for the CLI now and the HTTPS API later.

Weekly/monthly bars "as stored" (split-adjusted) come from the derived objects. Other
adjustments of weekly/monthly bars are aggregated on the fly from the adjusted daily bars,
because scaling a period that straddles a split or an ex-dividend day by one factor is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from barlake.core.adjust import adjust as adjust_bars
from barlake.core.aggregate import aggregate
from barlake.core.codec import decode_daily, decode_periods
from barlake.core.layout import daily_name, period_name
from barlake.core.profile import build_inventory
from barlake.core.schema import normalize_symbol
from barlake.ports import ObjectStore, RunStatus, StateStore, StoredObject
from barlake.services.derived import complete_through, decoded
from barlake.services.inventory import lake_profiles, lake_totals

INTERVALS = ("1d", "1wk", "1mo")


class NotFoundError(LookupError):
    """Nothing stored under that name."""


@dataclass(frozen=True)
class BarsResult:
    symbol: str
    interval: str
    table: pa.Table
    generation: int  # of the daily object the rows come from (weekly/monthly too): the API's


def _window(table: pa.Table, start: date | None, end: date | None, limit: int | None) -> pa.Table:
    if start is not None:
        table = table.filter(pc.greater_equal(table["date"], pa.scalar(start, pa.date32())))
    if end is not None:
        table = table.filter(pc.less_equal(table["date"], pa.scalar(end, pa.date32())))
    if limit is not None and table.num_rows > limit:
        table = table.slice(table.num_rows - limit)  # the most recent `limit` bars
    return table


@dataclass
class ReadService:
    raw: ObjectStore
    derived: ObjectStore
    state: StateStore

    def bars(
        self,
        symbol: str,
        interval: str = "1d",
        start: date | None = None,
        end: date | None = None,
        adjust: str = "split",
        limit: int | None = None,
        as_of: datetime | None = None,
    ) -> BarsResult:
        """as_of: the bars as the lake held them then (barlake.services.asof); the result's
        generation names the version read."""
        symbol = normalize_symbol(symbol)
        if interval not in INTERVALS:
            raise ValueError(f"interval must be one of {', '.join(INTERVALS)}")
        if start and end and start > end:
            raise ValueError(f"start {start} is after end {end}")
        if interval != "1d" and adjust == "split" and as_of is None:
            # The stored periods when built from the current daily object, and the daily
            # generation either way: what the API answers (its ETag and "generation").
            obj = self.derived.read(period_name(symbol, interval))
            daily = self.raw.stat(daily_name(symbol)) if obj is not None else None
            built_from = obj.info.metadata.get("source_generation") if obj is not None else None
            if obj is not None and daily is not None and built_from == str(daily.generation):
                table = decode_periods(obj.data)
                return BarsResult(
                    symbol, interval, _window(table, start, end, limit), daily.generation
                )
        obj = self.raw.read(daily_name(symbol)) if as_of is None else self._as_of(symbol, as_of)
        if obj is None:
            raise NotFoundError(f"no bars for {symbol}")
        bars, actions = decoded(obj.info.name, decode_daily, obj.data)
        bars = adjust_bars(bars, actions, adjust)
        if interval != "1d":
            last = bars.column("date")[-1].as_py() if bars.num_rows else None
            bars = aggregate(bars, interval, complete_through(symbol, last) if last else None)
        return BarsResult(symbol, interval, _window(bars, start, end, limit), obj.info.generation)

    def _as_of(self, symbol: str, as_of: datetime) -> StoredObject:
        from barlake.services.asof import NotKeptError, read_as_of

        try:
            return read_as_of(self.raw, daily_name(symbol), as_of)
        except NotKeptError as exc:
            raise NotFoundError(f"no bars for {symbol} as of {as_of.isoformat()}") from exc

    def actions(self, symbol: str) -> pa.Table:
        obj = self.raw.read(daily_name(normalize_symbol(symbol)))
        if obj is None:
            raise NotFoundError(f"no bars for {symbol}")
        return decoded(obj.info.name, decode_daily, obj.data)[1]

    def provenance(self, symbol: str) -> list[dict[str, Any]]:
        """Which provider gave each stored row, as runs (core.provenance.runs)."""
        from barlake.core.codec import decode_provenance
        from barlake.core.provenance import runs

        obj = self.raw.read(daily_name(normalize_symbol(symbol)))
        if obj is None:
            raise NotFoundError(f"no bars for {symbol}")
        return runs(decode_provenance(obj.data))

    def profile(self, symbol: str) -> dict[str, Any]:
        found = self.state.get_profile(normalize_symbol(symbol))
        if found is None:
            raise NotFoundError(f"no profile for {symbol}")
        return dict(found)

    def inventory(self) -> dict[str, Any]:
        entries = lake_profiles(self.raw, self.state)  # counted from the daily objects
        return {**build_inventory(entries), **lake_totals(entries)}

    def run(self, run_id: str | None = None) -> RunStatus:
        status = self.state.get_run(run_id) if run_id else self.state.latest_run()
        if status is None:
            raise NotFoundError(f"no run {run_id}" if run_id else "no run yet")
        return status
