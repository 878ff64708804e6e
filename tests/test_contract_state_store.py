"""The state-store contract, run against every adapter (SQLite today; Firestore joins)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from barlake.adapters.sqlite_state import SqliteStateStore
from barlake.ports import (
    BatchRecord,
    QuarantineRecord,
    RestatementRecord,
    RunRecord,
    StateStore,
    SymbolOutcome,
    SymbolRecord,
)

ADAPTERS: dict[str, Callable[[Path], StateStore]] = {
    "sqlite": lambda tmp: SqliteStateStore(tmp / "state.sqlite"),
}
T0 = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)


@pytest.fixture(params=sorted(ADAPTERS))
def state(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    return ADAPTERS[request.param](tmp_path)


def test_symbol_registry_universes(state: StateStore) -> None:
    state.upsert_symbols(
        [SymbolRecord("AAPL", ("sp500",)), SymbolRecord("7203.T", ("nikkei",), ("jp",))]
    )
    state.upsert_symbols([SymbolRecord("AAPL", ("sp500", "tech"))])
    assert [r.symbol for r in state.list_symbols()] == ["7203.T", "AAPL"]
    assert [r.symbol for r in state.list_symbols("tech")] == ["AAPL"]
    state.upsert_symbols([SymbolRecord("7203.T", ("nikkei",), ("jp",), active=False)])
    assert [r.symbol for r in state.list_symbols("nikkei")] == []
    assert state.list_symbols("nikkei", active_only=False)[0].tags == ("jp",)


def test_run_ledger_completeness_from_batches(state: StateStore) -> None:
    run = RunRecord(
        "r1",
        "scheduled",
        T0,
        ("r1-b0", "r1-b1"),
        3,
        {"universe": "default"},
        (("AAPL", "MSFT"), ("ZZZZ",)),
    )
    assert state.create_run(run) is True
    assert state.create_run(run) is False  # idempotent
    ok = SymbolOutcome("AAPL", "ok", rows_written=10, rows_new=1, generation=5)
    state.record_batch(BatchRecord("r1", "r1-b0", T0, (ok,)))
    status = state.get_run("r1")
    assert status is not None and not status.complete
    limited = SymbolOutcome("ZZZZ", "failed", error_kind="rate_limited", error="429")
    state.record_batch(BatchRecord("r1", "r1-b1", T0, (limited,)))
    status = state.get_run("r1")
    assert status is not None and not status.complete  # a retryable failure is not done
    bad = SymbolOutcome("ZZZZ", "failed", error_kind="not_found", error="delisted")
    state.record_batch(BatchRecord("r1", "r1-b1", T0, (bad,)))
    state.record_batch(BatchRecord("r1", "r1-b1", T0, (bad,)))  # redelivered: same record
    status = state.get_run("r1")
    assert status is not None and status.complete
    assert [o.symbol for o in status.outcomes()] == ["AAPL", "ZZZZ"]
    assert status.outcomes()[0] == ok and status.outcomes()[1] == bad
    assert status.run.params == {"universe": "default"}
    assert status.run.batch_symbols == (("AAPL", "MSFT"), ("ZZZZ",))
    assert state.get_batch("r1", "r1-b1") == BatchRecord("r1", "r1-b1", T0, (bad,))
    assert state.get_batch("r1", "nope") is None
    latest = state.latest_run()
    assert latest is not None and latest.run.run_id == "r1"
    assert state.get_run("nope") is None


def test_quarantine_keeps_each_bad_row_once_with_the_run_that_first_saw_it(
    state: StateStore,
) -> None:
    rec = QuarantineRecord("AET.L", date(2022, 5, 3), "not_finite", {"open": None}, "r1")
    state.add_quarantine([rec, rec])
    state.add_quarantine(
        [QuarantineRecord("AET.L", date(2022, 5, 3), "not_finite", {"open": None}, "r2")]
    )
    assert state.quarantine("AET.L") == [rec]
    other_copy = QuarantineRecord("AET.L", date(2022, 5, 3), "not_finite", {"open": 1.0}, "r1")
    state.add_quarantine([other_copy])
    assert len(state.quarantine("AET.L")) == 2
    assert state.quarantine("OTHER") == []


def test_restatements_and_profiles(state: StateStore) -> None:
    r = RestatementRecord("GOOG", T0, ("split",), {"split": "20:1"}, "r2")
    state.record_restatement(r)
    state.record_restatement(r)
    assert state.restatements("GOOG") == [r]
    state.put_profile("GOOG", {"symbol": "GOOG", "generation": 10, "rows": 1})
    state.put_profile("GOOG", {"symbol": "GOOG", "generation": 20, "rows": 2})
    state.put_profile(
        "GOOG", {"symbol": "GOOG", "generation": 15, "rows": 9}
    )  # a late, older build
    assert state.get_profile("GOOG") == {"symbol": "GOOG", "generation": 20, "rows": 2}
    assert state.list_profiles() == [{"symbol": "GOOG", "generation": 20, "rows": 2}]
    assert state.get_profile("NOPE") is None
