"""Property: the lake never shrinks, whatever sequence of answers the provider gives.

For any sequence of provider snapshots of one history — truncated at the start or the end,
restated by a split or a dividend, with refused (NaN) rows and rows left out — replayed through
the real embedded pipeline (dispatch → ingest → weekly + profile, SQLite, local buckets) by
daily runs and audits: after every run the lake holds every valid session it held before and
every valid session of each answer it applied, except the days a recorded rule removed
(quarantined as outliers). Suspect answers (core/history.suspect_reason) are applied nowhere.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from barlake.config import Settings, build_embedded, run_embedded
from barlake.core.calendar import get_calendar
from barlake.core.schema import BAR_SCHEMA, empty_actions
from barlake.core.validate import validate
from barlake.messages import IngestRequest
from barlake.ports import FetchResult, ProviderError
from barlake.services.audit import audit_request

SYM = "AAA"
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
SESSIONS = get_calendar("XNYS").sessions(date(2024, 1, 2), date(2024, 4, 30)).to_pylist()[:60]
_ids = itertools.count()


def base_rows() -> list[dict]:
    """A smooth, deterministic series: no day moves more than 2 %, so none is an outlier."""
    rows, price = [], 100.0
    for i, d in enumerate(SESSIONS):
        price *= 1.0 + 0.02 * ((i * 7919) % 11 - 5) / 5
        rows.append(
            {
                "symbol": SYM,
                "date": d,
                "open": price,
                "high": price * 1.01,
                "low": price * 0.99,
                "close": price,
                "adj_close": price * 0.97,
                "volume": 1000 + 10 * i,
            }
        )
    return rows


BASE = base_rows()

snapshot = st.fixed_dictionaries(
    {
        "start": st.integers(0, 40),  # rows cut from the start (a throttled or purged answer)
        "end": st.integers(40, 60),  # how far the provider's history reaches (a later day)
        "ratio": st.sampled_from([1.0, 1.0, 2.0, 0.5]),  # a split restatement of everything
        "adj": st.sampled_from([1.0, 1.0, 0.98]),  # a dividend restatement of adj_close
        "refused": st.sets(st.integers(0, 59), max_size=3),  # NaN close: refused rows
        "left_out": st.sets(st.integers(0, 59), max_size=3),  # rows the answer lacks
        "audit": st.booleans(),
    }
)


def answer(spec: dict) -> pa.Table:
    rows = []
    for i, r in enumerate(BASE[spec["start"] : spec["end"]], start=spec["start"]):
        if i in spec["left_out"]:
            continue
        k = 1.0 / spec["ratio"]
        row = {
            **r,
            **{c: r[c] * k for c in ("open", "high", "low", "close")},
            "adj_close": r["adj_close"] * k * spec["adj"],
            "volume": round(r["volume"] * spec["ratio"]),
        }
        if i in spec["refused"]:
            row["close"] = float("nan")
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=BAR_SCHEMA)


class Snapshots:
    """Serves the current snapshot, windowed like any provider; remembers what it answered."""

    name = "snapshots"

    def __init__(self) -> None:
        self.current = pa.Table.from_pylist([], schema=BAR_SCHEMA)
        self.answered: list[pa.Table] = []

    def fetch(
        self, symbols: Sequence[str], start: date | None, end: date | None
    ) -> dict[str, FetchResult]:
        bars = self.current
        if start is not None:
            bars = bars.filter(pc.greater_equal(bars["date"], pa.scalar(start, pa.date32())))
        if end is not None:
            bars = bars.filter(pc.less_equal(bars["date"], pa.scalar(end, pa.date32())))
        if bars.num_rows == 0:
            from barlake.ports import ErrorKind

            err = ProviderError(ErrorKind.NO_DATA, "no bars in the requested range")
            return {s: FetchResult(s, error=err) for s in symbols}
        self.answered.append(bars)
        return {s: FetchResult(s, bars=bars, actions=empty_actions(), as_of=None) for s in symbols}


def valid_days(table: pa.Table) -> set[date]:
    checked = validate(table, calendar=get_calendar("XNYS"), today=NOW.date())
    return set(checked.good.column("date").to_pylist())


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(snapshot, min_size=1, max_size=4))
def test_the_lake_never_holds_fewer_valid_sessions_than_it_held_and_applied(
    specs: list[dict],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        provider = Snapshots()
        app = build_embedded(
            Settings.from_env({}, lake_dir=str(Path(tmp) / "lake")),
            provider=provider,
            clock=lambda: NOW,
        )
        held: set[date] = set()
        for spec in specs:
            provider.current = answer(spec)
            provider.answered.clear()
            run_id = f"p-{next(_ids)}"
            if spec["audit"]:
                request = audit_request([SYM], run_id)
            else:
                request = IngestRequest(kind="manual", run_id=run_id, symbols=(SYM,))
            status = run_embedded(app, request)
            (outcome,) = status.outcomes()
            brought: set[date] = set()
            if outcome.status != "failed":
                for table in provider.answered:
                    brought |= valid_days(table)
            removed = {q.date for q in app.state.quarantine(SYM) if q.reason == "outlier"}
            try:
                now_held = set(app.read.bars(SYM).table.column("date").to_pylist())
            except Exception:  # nothing stored yet (a new symbol whose answer had no valid row)
                now_held = set()
            lost = (held | brought) - removed - now_held
            assert not lost, f"{outcome.status}: lost {sorted(lost)[:5]} ({outcome.error})"
            if outcome.status == "failed" and "suspect" in (outcome.error or ""):
                assert now_held == held  # a suspect answer changes nothing
            held = now_held
