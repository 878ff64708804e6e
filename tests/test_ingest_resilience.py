"""Ingest under retries, races and partial failure: each test is a failure seen in review.

A scripted provider answers per symbol from a function of the requested window, so a test can
say "Yahoo has restated this history" or "the first call is rate limited" exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from barlake.config import App, Settings, build_embedded, run_embedded
from barlake.core.codec import encode_daily
from barlake.core.layout import daily_name
from barlake.core.schema import empty_actions
from barlake.messages import DEAD_LETTER, IngestBatch, IngestRequest
from barlake.ports import (
    BatchRecord,
    ErrorKind,
    FetchResult,
    ObjectInfo,
    ProviderError,
    SymbolOutcome,
)
from barlake.services.ingest import combine_outcomes
from conftest import bars, weekdays

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
DAYS = weekdays(date(2024, 1, 2), 20)  # 2024-01-02 .. 2024-01-29 (MLK day 01-15 is skipped below)
DAYS = [d for d in DAYS if d != date(2024, 1, 15)]

Answer = Callable[[date | None, date | None], FetchResult | None]


def series(symbol: str, days: list[date], price: float, volume: int) -> pa.Table:
    return bars(symbol, [(d, price, price, price, price, price, volume) for d in days])


def window(table: pa.Table, start: date | None, end: date | None) -> pa.Table:
    rows = [
        r
        for r in table.to_pylist()
        if (start is None or r["date"] >= start) and (end is None or r["date"] <= end)
    ]
    return pa.Table.from_pylist(rows, schema=table.schema)


class Scripted:
    """Provider whose answer for each symbol is a function of the window, or a queue of them."""

    name = "scripted"

    def __init__(self) -> None:
        self.answers: dict[str, list[Answer]] = {}
        self.calls: list[tuple[str, date | None, date | None]] = []

    def serve(self, symbol: str, *answers: Answer) -> None:
        self.answers[symbol] = list(answers)

    def fetch(
        self, symbols: Sequence[str], start: date | None, end: date | None
    ) -> dict[str, FetchResult]:
        out = {}
        for s in symbols:
            self.calls.append((s, start, end))
            queue = self.answers[s]
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
            out[s] = answer(start, end) or FetchResult(
                s, error=ProviderError(ErrorKind.NO_DATA, "empty")
            )
        return out


def table_answer(symbol: str, table: pa.Table) -> Answer:
    def answer(start: date | None, end: date | None) -> FetchResult:
        return FetchResult(
            symbol, bars=window(table, start, end), actions=empty_actions(), as_of=NOW
        )

    return answer


def error_answer(symbol: str, kind: ErrorKind) -> Answer:
    return lambda start, end: FetchResult(
        symbol, error=ProviderError(kind, f"{kind.value} (scripted)")
    )


def make_app(tmp_path: Path, provider: Scripted, **settings: str) -> App:
    return build_embedded(
        Settings.from_env({}, lake_dir=str(tmp_path / "lake"), **settings),
        provider=provider,
        clock=lambda: NOW,
    )


def store(app: App, table: pa.Table) -> None:
    symbol = table.column("symbol")[0].as_py()
    app.raw.write(daily_name(symbol), encode_daily(table, empty_actions()), if_generation_match=0)


def closes(app: App, symbol: str) -> list[tuple[date, float, int]]:
    return [(r["date"], r["close"], r["volume"]) for r in app.read.bars(symbol).table.to_pylist()]


def run(app: App, run_id: str, *symbols: str, **kw: Any) -> Any:
    return run_embedded(app, IngestRequest(kind="backfill", run_id=run_id, symbols=symbols, **kw))


def outcome(status: Any, symbol: str) -> SymbolOutcome:
    return next(o for o in status.outcomes() if o.symbol == symbol)


# ------------------------------------------------------------------ restatements


def test_restatement_found_by_a_bounded_backfill_replaces_the_whole_history(tmp_path: Path) -> None:
    """A 2:1 split seen through a backfill with an end date must not leave the days after
    that end at the old price scale."""
    provider = Scripted()
    app = make_app(tmp_path, provider)
    store(app, series("AAA", DAYS, 100.0, 1000))
    provider.serve("AAA", table_answer("AAA", series("AAA", DAYS, 50.0, 2000)))
    status = run(app, "bf", "AAA", start=DAYS[0], end=DAYS[8])
    assert outcome(status, "AAA").status == "restated"
    assert closes(app, "AAA") == [(d, 50.0, 2000) for d in DAYS]
    # The refetch ran to today (no end), from the first stored day.
    assert provider.calls[-1] == ("AAA", DAYS[0], None)


def test_backfill_of_older_days_after_a_split_heals_the_stored_days_too(tmp_path: Path) -> None:
    """Backfilling days before the stored history, with an end before it, after Yahoo applied
    a split: the fetch must still reach the stored tail, see the split, and replace it all."""
    provider = Scripted()
    app = make_app(tmp_path, provider)
    store(app, series("AAA", DAYS[10:], 100.0, 1000))
    provider.serve("AAA", table_answer("AAA", series("AAA", DAYS, 50.0, 2000)))
    status = run(app, "bf", "AAA", start=DAYS[0], end=DAYS[5])
    assert outcome(status, "AAA").status == "restated"
    assert closes(app, "AAA") == [(d, 50.0, 2000) for d in DAYS]
    # The first fetch already covered the whole history to refetch: it is reused, not repeated.
    assert provider.calls == [("AAA", DAYS[0], None)]


def test_full_run_starting_after_the_stored_tail_still_checks_the_overlap(tmp_path: Path) -> None:
    provider = Scripted()
    app = make_app(tmp_path, provider)
    store(app, series("AAA", DAYS[:-4], 100.0, 1000))
    provider.serve("AAA", table_answer("AAA", series("AAA", DAYS, 50.0, 2000)))
    status = run(app, "full", "AAA", start=DAYS[-2], full=True)
    assert outcome(status, "AAA").status == "restated"
    assert closes(app, "AAA") == [(d, 50.0, 2000) for d in DAYS]


def test_full_run_that_finds_a_restatement_keeps_the_whole_history_it_asked_for(
    tmp_path: Path,
) -> None:
    provider = Scripted()
    app = make_app(tmp_path, provider)
    store(app, series("AAA", DAYS[10:], 100.0, 1000))  # the lake began later than the provider
    provider.serve("AAA", table_answer("AAA", series("AAA", DAYS, 50.0, 2000)))
    status = run(app, "full", "AAA", full=True)
    assert outcome(status, "AAA").status == "restated"
    assert closes(app, "AAA") == [(d, 50.0, 2000) for d in DAYS]
    assert provider.calls == [("AAA", None, None)]  # the whole history, fetched once


def test_a_refused_last_row_in_the_full_history_keeps_the_stored_bar_rescaled(
    tmp_path: Path,
) -> None:
    """The refetch refuses its row for the last stored day: the good stored bar stays, at the
    new scale (the 2:1 factor of the nearest day both hold), never deleted, never left at the
    old scale (docs/data-quality.md, "History never shrinks")."""
    provider = Scripted()
    app = make_app(tmp_path, provider)
    store(app, series("AAA", DAYS, 100.0, 1000))
    rows = series("AAA", DAYS, 50.0, 2000).to_pylist()
    rows[-1]["high"] = 1.0  # Yahoo's row for the last stored day is now bad
    provider.serve(
        "AAA",
        table_answer("AAA", pa.Table.from_pylist(rows, schema=series("AAA", [], 1, 1).schema)),
    )
    status = run(app, "r", "AAA")
    o = outcome(status, "AAA")
    assert o.status == "restated" and o.restatement["kinds"] == ["split", "missing"]
    assert closes(app, "AAA") == [(d, 50.0, 2000) for d in DAYS]


def test_a_new_symbol_with_nothing_storable_fails_with_no_data(tmp_path: Path) -> None:
    provider = Scripted()
    app = make_app(tmp_path, provider)
    provider.serve("NEWCO", table_answer("NEWCO", series("NEWCO", DAYS[:2], -1.0, 5)))
    o = outcome(run(app, "n", "NEWCO"), "NEWCO")
    assert (o.status, o.error_kind, o.rows_quarantined) == ("failed", "no_data", 2)
    assert "no final, valid bar to store (2 quarantined, 0 still in progress)" in o.error


def test_a_writer_that_loses_to_a_concurrent_restatement_retries_instead_of_merging(
    tmp_path: Path,
) -> None:
    """Writer A fetched the old scale; while it merged, writer B restated the history (2:1).
    A's conflict retry must notice the restatement instead of writing old-scale rows on top."""
    provider = Scripted()
    app = make_app(tmp_path, provider)
    store(app, series("AAA", DAYS[:-2], 100.0, 1000))
    old_view = series("AAA", DAYS, 100.0, 1000)
    new_view = series("AAA", DAYS, 50.0, 2000)
    provider.serve("AAA", table_answer("AAA", old_view), table_answer("AAA", new_view))
    real_write = app.raw.write
    raced = []

    def write(name: str, data: bytes, **kw: Any) -> ObjectInfo:
        if not raced:  # B wins the race with the restated history, just before A writes
            raced.append(1)
            current = app.raw.stat(name)
            real_write(
                name,
                encode_daily(new_view, empty_actions()),
                if_generation_match=current.generation,
            )
        return real_write(name, data, **kw)

    app.raw.write = write  # type: ignore[method-assign]
    status = run(app, "race", "AAA")
    # A's first attempt failed as retryable; the redelivery fetched the new scale and merged.
    assert outcome(status, "AAA").status in {"ok", "unchanged"}
    assert closes(app, "AAA") == [(d, 50.0, 2000) for d in DAYS]
    assert len(provider.calls) == 2


def test_restatement_is_recorded_before_the_healed_object_is_written(tmp_path: Path) -> None:
    provider = Scripted()
    app = make_app(tmp_path, provider)
    store(app, series("AAA", DAYS, 100.0, 1000))
    provider.serve("AAA", table_answer("AAA", series("AAA", DAYS, 50.0, 2000)))
    real_write = app.raw.write
    seen_at_write: list[int] = []

    def write(name: str, data: bytes, **kw: Any) -> ObjectInfo:
        seen_at_write.append(len(app.state.restatements("AAA")))
        return real_write(name, data, **kw)

    app.raw.write = write  # type: ignore[method-assign]
    run(app, "r", "AAA")
    assert seen_at_write == [1]


# ------------------------------------------------------------------ one symbol's failure


def test_a_corrupt_object_or_an_empty_full_history_fails_only_its_own_symbol(
    tmp_path: Path,
) -> None:
    provider = Scripted()
    app = make_app(tmp_path, provider)
    app.raw.write(daily_name("AAA"), b"not parquet", if_generation_match=0)
    store(app, series("CCC", DAYS, 100.0, 1000))
    provider.serve("AAA", table_answer("AAA", series("AAA", DAYS, 10.0, 1)))
    provider.serve("BBB", table_answer("BBB", series("BBB", DAYS, 10.0, 1)))
    # CCC: the overlap shows a split, but the full history Yahoo sends back is all invalid.
    invalid = series("CCC", DAYS, -1.0, 1)
    restated = series("CCC", DAYS, 50.0, 2000)
    provider.serve(
        "CCC",
        lambda s, e: FetchResult(
            "CCC",
            bars=window(restated if s != DAYS[0] else invalid, s, e),
            actions=empty_actions(),
            as_of=NOW,
        ),
    )
    status = run(app, "mixed", "AAA", "BBB", "CCC")
    a, b, c = (outcome(status, s) for s in ("AAA", "BBB", "CCC"))
    assert (
        a.status == "failed"
        and a.error_kind == "corrupt"  # kept as is until `barlake repair`
        and "reading the stored object" in a.error
    )
    assert b.status == "ok" and b.rows_written == len(DAYS)
    assert c.status == "failed" and c.error_kind == "no_data" and "no valid rows" in c.error
    assert closes(app, "CCC") == [(d, 100.0, 1000) for d in DAYS]  # untouched, not half-healed
    assert status.complete  # permanent failures are recorded; nothing is left to retry
    dead = [e for e in app.bus.published if e.topic == DEAD_LETTER]  # type: ignore[attr-defined]
    assert dead == []  # nor retried: the corrupt object's finalize event is acknowledged too


# ------------------------------------------------------------------ retries


def test_transient_provider_failure_is_retried_to_success(tmp_path: Path) -> None:
    provider = Scripted()
    app = make_app(tmp_path, provider)
    provider.serve(
        "AAA",
        error_answer("AAA", ErrorKind.RATE_LIMITED),
        table_answer("AAA", series("AAA", DAYS, 10.0, 5)),
    )
    status = run(app, "t", "AAA")
    assert outcome(status, "AAA").status == "ok"
    assert status.complete and len(provider.calls) == 2


def test_persistent_transient_failure_is_dead_lettered_and_leaves_the_run_incomplete(
    tmp_path: Path,
) -> None:
    provider = Scripted()
    app = make_app(tmp_path, provider)
    provider.serve("AAA", error_answer("AAA", ErrorKind.TRANSIENT))
    provider.serve("BBB", table_answer("BBB", series("BBB", DAYS, 10.0, 5)))
    status = run(app, "t", "AAA", "BBB")
    attempts = app.bus.max_attempts  # type: ignore[attr-defined]
    # Each redelivery redoes only the failed symbol: BBB is fetched once, AAA every time.
    assert [c[0] for c in provider.calls] == ["AAA", "BBB"] + ["AAA"] * (attempts - 1)
    assert outcome(status, "AAA").retryable and outcome(status, "BBB").status == "ok"
    assert not status.complete
    dead = [e for e in app.bus.published if e.topic == DEAD_LETTER]  # type: ignore[attr-defined]
    assert len(dead) == 1 and '"batch_id":"t-b00000"' in dead[0].json()["data"]
    # Replaying the request later (AAA's outage over) finishes the run, fetching AAA only.
    calls = len(provider.calls)
    provider.serve("AAA", table_answer("AAA", series("AAA", DAYS, 10.0, 5)))
    status = run(app, "t", "AAA", "BBB")
    assert status.complete and provider.calls[calls:] == [("AAA", None, None)]
    assert {o.symbol: o.status for o in status.outcomes()} == {"AAA": "ok", "BBB": "ok"}


def test_redelivered_dispatch_republishes_the_batches_it_created(tmp_path: Path) -> None:
    """The universe changes between two deliveries of one scheduled tick: same batches."""
    provider = Scripted()
    app = make_app(tmp_path, provider, batch_size="2")
    from barlake.ports import SymbolRecord

    app.state.upsert_symbols([SymbolRecord(s, ("default",)) for s in ("B", "C", "D", "E")])
    tick = IngestRequest(kind="scheduled", run_id="tick-1")
    first = app.dispatch.handle(tick)
    sent = [e.json()["symbols"] for e in app.bus.published]  # type: ignore[attr-defined]
    app.state.upsert_symbols([SymbolRecord("A", ("default",))])
    again = app.dispatch.handle(tick)
    resent = [e.json()["symbols"] for e in app.bus.published][len(sent) :]  # type: ignore[attr-defined]
    assert first.batch_symbols == again.batch_symbols == (("B", "C"), ("D", "E"))
    assert sent == resent == [["B", "C"], ["D", "E"]]


# ------------------------------------------------------------------ the ledger and quarantine


def _o(status: str, **kw: Any) -> SymbolOutcome:
    return SymbolOutcome("X", status, **kw)


@pytest.mark.parametrize(
    ("before", "after", "kept"),
    [
        ("ok", "unchanged", "ok"),
        ("restated", "unchanged", "restated"),
        ("ok", "failed", "ok"),
        ("unchanged", "failed", "unchanged"),
        ("failed", "ok", "ok"),
        ("failed", "failed", "failed"),
        ("unchanged", "ok", "ok"),
    ],
)
def test_redeliveries_never_downgrade_an_outcome(before: str, after: str, kept: str) -> None:
    old = BatchRecord("r", "b", NOW, (_o(before, rows_written=5),))
    new = BatchRecord("r", "b", NOW, (_o(after),))
    assert combine_outcomes(old, new).outcomes[0].status == kept


def test_duplicate_delivery_keeps_the_ledgers_write(tmp_path: Path) -> None:
    provider = Scripted()
    app = make_app(tmp_path, provider)
    provider.serve("AAA", table_answer("AAA", series("AAA", DAYS, 10.0, 5)))
    batch = IngestBatch("r", "r-b00000", ("AAA",))
    app.ingest.handle(batch)
    app.ingest.handle(batch)
    record = app.state.get_batch("r", "r-b00000")
    assert (
        record is not None
        and record.outcomes[0].status == "ok"
        and record.outcomes[0].rows_written == len(DAYS)
    )


@pytest.mark.parametrize(("column", "bad"), [("high", 1.0), ("open", float("nan"))])
def test_a_bad_row_seen_by_the_fetch_and_the_full_refetch_counts_once(
    tmp_path: Path, column: str, bad: float
) -> None:
    provider = Scripted()
    app = make_app(tmp_path, provider)
    store(app, series("AAA", DAYS, 100.0, 1000))
    rows = series("AAA", DAYS, 50.0, 2000).to_pylist()
    rows[-1][column] = bad
    provider.serve(
        "AAA",
        table_answer("AAA", pa.Table.from_pylist(rows, schema=series("AAA", [], 1, 1).schema)),
    )
    status = run(app, "r", "AAA")
    assert outcome(status, "AAA").status == "restated"
    assert outcome(status, "AAA").rows_quarantined == 1
    assert len(app.state.quarantine("AAA")) == 1


def test_a_bad_row_in_the_overlap_is_quarantined_once_across_runs(tmp_path: Path) -> None:
    provider = Scripted()
    app = make_app(tmp_path, provider)
    rows = series("AAA", DAYS, 10.0, 5).to_pylist()
    rows[-1]["high"] = 1.0  # high below open/close, in the last session
    provider.serve(
        "AAA",
        table_answer("AAA", pa.Table.from_pylist(rows, schema=series("AAA", [], 1, 1).schema)),
    )
    for i in range(3):
        status = run(app, f"day-{i}", "AAA")
        assert outcome(status, "AAA").rows_quarantined == 1  # refused by this run, once
    records = app.state.quarantine("AAA")
    assert [(r.date, r.reason, r.run_id) for r in records] == [
        (DAYS[-1], "high_below_open_close", "day-0")
    ]
    assert app.state.get_profile("AAA")["quarantined"] == 1
