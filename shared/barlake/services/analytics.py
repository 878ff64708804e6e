"""Analytics on read: indicators and performance statistics of stored bars.

Written against the ports only (the API caches the answers: barlake.api.analytics). The bars
come from the same stored objects and the same core functions as the bars endpoint (decode,
adjust, aggregate), always over the whole history: an indicator or a drawdown never depends on
where the asked window starts; the window is cut afterwards.

An answer is a pure function of the daily objects it was built from and of the request,
which is what lets the API cache it under those objects' generations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from barlake.core import indicators as ind
from barlake.core import performance as perf
from barlake.core.adjust import adjust as adjust_bars
from barlake.core.codec import decode_daily, decode_periods
from barlake.core.layout import daily_name, period_name
from barlake.ports import ObjectStore

ANALYTICS_VERSION = 1  # in every cache key and ETag: a new layout never meets an old body
MAX_WINDOW = 10_000
MAX_SYMBOLS = 20


class NotFoundError(LookupError):
    """No bars stored for a symbol."""


@dataclass(frozen=True)
class IndicatorQuery:
    requests: tuple[ind.Request, ...]
    interval: str = "1d"
    adjust: str = "split"
    start: date | None = None
    end: date | None = None
    limit: int | None = None
    format: str = "json"

    def variant(self) -> str:
        reqs = ";".join(r.key() for r in self.requests)
        return (
            f"ind:r{ANALYTICS_VERSION}:{self.interval}:{self.adjust}:{_iso(self.start)}:"
            f"{_iso(self.end)}:{self.limit or ''}:{self.format}:{reqs}"
        )


@dataclass(frozen=True)
class StatsQuery:
    symbols: tuple[str, ...]
    benchmark: str | None = None  # None: no benchmark statistics
    start: date | None = None
    end: date | None = None
    risk_free: float = 0.0
    window: int | None = None  # rolling statistics over this many returns
    format: str = "json"

    def variant(self, generations: Sequence[int | None]) -> str:
        names = [*self.symbols, self.benchmark or ""]
        gens = ",".join(f"{s}@{g}" for s, g in zip(names, generations, strict=False))
        return (
            f"perf:r{ANALYTICS_VERSION}:{gens}:{_iso(self.start)}:{_iso(self.end)}:"
            f"{self.risk_free!r}:{self.window or ''}:{self.format}"
        )


def _iso(d: date | None) -> str:
    return d.isoformat() if d else ""


def _window(table: pa.Table, start: date | None, end: date | None) -> pa.Table:
    if start is not None:
        table = table.filter(pc.greater_equal(table["date"], pa.scalar(start, pa.date32())))
    if end is not None:
        table = table.filter(pc.less_equal(table["date"], pa.scalar(end, pa.date32())))
    return table


@dataclass
class Analytics:
    raw: ObjectStore
    derived: ObjectStore

    # ------------------------------------------------------------------ bars

    def bars(
        self, symbol: str, interval: str = "1d", adjust: str = "split"
    ) -> tuple[pa.Table, int]:
        """Every stored bar of the symbol in that view, and the daily generation it came from."""
        obj = self.raw.read(daily_name(symbol))
        if obj is None:
            raise NotFoundError(f"no bars for {symbol}")
        generation = obj.info.generation
        if interval != "1d" and adjust == "split":
            derived = self.derived.read(period_name(symbol, interval))
            if derived is not None and (
                derived.info.metadata.get("source_generation") == str(generation)
            ):
                return decode_periods(derived.data), generation
        bars, actions = decode_daily(obj.data)
        bars = adjust_bars(bars, actions, adjust)
        if interval != "1d" and bars.num_rows:
            from barlake.core.aggregate import aggregate
            from barlake.services.derived import complete_through

            last = bars.column("date")[-1].as_py()
            bars = aggregate(bars, interval, complete_through(symbol, last))
        return bars, generation

    # ------------------------------------------------------------------ indicators

    def indicators(self, symbol: str, q: IndicatorQuery) -> tuple[pa.Table, int]:
        """`date` and the indicators' columns (plus the bar's close) over the asked window."""
        bars, generation = self.bars(symbol, q.interval, q.adjust)
        table = ind.compute(bars, q.requests)
        table = table.add_column(1, "close", bars.column("close"))
        table = _window(table, q.start, q.end)
        if q.limit is not None and table.num_rows > q.limit:
            table = table.slice(table.num_rows - q.limit)
        return table, generation

    # ------------------------------------------------------------------ statistics

    def closes(self, symbol: str) -> tuple[np.ndarray, np.ndarray, int]:
        """Dates (datetime64[D]) and total-return closes of every stored day, and the generation.

        The total-return close is the stored adj_close (adjust=total scales every price by
        adj_close / close, so its close is adj_close, to the last bit or one ulp)."""
        obj = self.raw.read(daily_name(symbol))
        if obj is None:
            raise NotFoundError(f"no bars for {symbol}")
        generation = obj.info.generation
        bars, _ = decode_daily(obj.data)
        dates = ind.numbers(bars.column("date").cast(pa.int32()), "int32").astype("datetime64[D]")
        closes = ind.numbers(bars.column("adj_close"))
        ok = np.isfinite(closes) & (closes > 0)
        return dates[ok], closes[ok], generation

    def statistics(self, q: StatsQuery) -> tuple[dict[str, Any], list[int]]:
        """The answer of /v1/analytics (one symbol or several), and the generations used."""
        from barlake.core.calendar import exchange_for

        loaded = {s: self.closes(s) for s in dict.fromkeys(q.symbols)}
        bench = None
        if q.benchmark is not None:
            bench = loaded.get(q.benchmark) or self.closes(q.benchmark)
        lo = np.datetime64(q.start, "D") if q.start else None
        hi = np.datetime64(q.end, "D") if q.end else None

        def cut(dates: np.ndarray, closes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            keep = np.ones(len(dates), dtype=bool)
            if lo is not None:
                keep &= dates >= lo
            if hi is not None:
                keep &= dates <= hi
            return dates[keep], closes[keep]

        bench_cut = cut(bench[0], bench[1]) if bench else None
        bench_ann = perf.periods_per_year(exchange_for(q.benchmark)) if q.benchmark else 0
        results = []
        for symbol in q.symbols:
            dates, closes, _ = loaded[symbol]
            dates, closes = cut(dates, closes)
            ann = perf.periods_per_year(exchange_for(symbol))
            entry: dict[str, Any] = {
                "symbol": symbol,
                **perf.summary(dates, closes, ann, q.risk_free),
            }
            if bench_cut is not None:
                pair_ann = min(ann, bench_ann)
                entry["benchmark"] = {
                    "symbol": q.benchmark,
                    **perf.versus(dates, closes, *bench_cut, pair_ann, q.risk_free),
                }
            if q.window is not None:
                upto = loaded[symbol][0] <= hi if hi is not None else slice(None)
                bench_upto = None
                if bench is not None:
                    bench_upto = (bench[0], bench[1])
                    if hi is not None:
                        keep = bench[0] <= hi
                        bench_upto = (bench[0][keep], bench[1][keep])
                entry["rolling"] = self._rolling(
                    loaded[symbol][0][upto],
                    loaded[symbol][1][upto],
                    ann,
                    q,
                    bench_upto,
                    min(ann, bench_ann or ann),
                )
            results.append(entry)
        answer: dict[str, Any] = {
            "start": _iso(q.start) or None,
            "end": _iso(q.end) or None,
            "risk_free": q.risk_free,
            "window": q.window,
            "results": results,
        }
        if len(q.symbols) > 1:
            series = [cut(loaded[s][0], loaded[s][1]) for s in q.symbols]
            answer["correlation"] = {
                "symbols": list(q.symbols),
                "matrix": perf.correlation_matrix(series),
            }
        gens = [loaded[s][2] for s in q.symbols] + ([bench[2]] if bench else [])
        return answer, gens

    @staticmethod
    def _rolling(
        dates: np.ndarray,
        closes: np.ndarray,
        ann: int,
        q: StatsQuery,
        bench: tuple[np.ndarray, np.ndarray] | None,
        pair_ann: int,
    ) -> dict[str, list[Any]]:
        """Rolling statistics on each date from `start` to `end`; the series given run up to
        `end` from the first stored day, so the first windows reach back before `start`."""
        assert q.window is not None
        own = perf.rolling(closes, q.window, ann, q.risk_free)
        shown = dates >= np.datetime64(q.start, "D") if q.start else np.ones(len(dates), bool)
        columns: dict[str, list[Any]] = {
            "date": [str(d) for d in dates[shown]],
            **{k: _nulls(own[k][shown]) for k in perf.ROLLING if k not in ("beta", "correlation")},
        }
        if bench is not None:
            common, a, b = perf.align(dates, closes, *bench)
            pair = perf.rolling(a, q.window, pair_ann, q.risk_free, b)
            where = np.searchsorted(dates, common)
            for k in ("beta", "correlation"):
                full = np.full(len(dates), np.nan)
                full[where] = pair[k]
                columns[k] = _nulls(full[shown])
        return columns


def columns_of(requests: Sequence[ind.Request]) -> list[list[str]]:
    names = ind.output_names(requests)
    out, i = [], 0
    for r in requests:
        n = len(r.indicator.outputs)
        out.append(names[i : i + n])
        i += n
    return out


def _nulls(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]


STATS_CSV_COLUMNS = (
    "symbol",
    "start",
    "end",
    "observations",
    "periods_per_year",
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_peak",
    "max_drawdown_trough",
    "max_drawdown_recovery",
    "calmar",
    "best_day",
    "best_day_date",
    "worst_day",
    "worst_day_date",
)
BENCH_CSV_COLUMNS = ("benchmark", "beta", "alpha", "correlation")


def _cell(v: Any) -> str:
    return "" if v is None else repr(v) if isinstance(v, float) else str(v)


def stats_csv(answer: dict[str, Any]) -> bytes:
    """One row per symbol; with a rolling window, the rolling table of each symbol instead."""
    results = answer["results"]
    if answer.get("window"):
        keys = [k for k in results[0]["rolling"] if k != "date"]
        lines = [",".join(["symbol", "date", *keys])]
        for entry in results:
            roll = entry["rolling"]
            for i, d in enumerate(roll["date"]):
                lines.append(",".join([entry["symbol"], d, *(_cell(roll[k][i]) for k in keys)]))
        return ("\n".join(lines) + "\n").encode()
    with_bench = "benchmark" in results[0]
    header = [*STATS_CSV_COLUMNS, *(BENCH_CSV_COLUMNS if with_bench else ())]
    lines = [",".join(header)]
    for entry in results:
        row = [_cell(entry[k]) for k in STATS_CSV_COLUMNS]
        if with_bench:
            b = entry["benchmark"]
            row += [b["symbol"], _cell(b["beta"]), _cell(b["alpha"]), _cell(b["correlation"])]
        lines.append(",".join(row))
    return ("\n".join(lines) + "\n").encode()
