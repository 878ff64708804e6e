"""The state-store contract, run against every adapter: SQLite, and Firestore on its emulator.

Each Firestore test gets its own collection prefix on the one session emulator, which starts
only when a Firestore-parametrised test runs.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from barlake.adapters.firestore_state import FirestoreStateStore
from barlake.adapters.sqlite_state import SqliteStateStore
from barlake.ports import (
    AuditRecord,
    BatchRecord,
    QuarantineRecord,
    RestatementRecord,
    RunRecord,
    StateStore,
    SymbolOutcome,
    SymbolRecord,
    TransientError,
)
from conftest import EMULATOR_PROJECT


def _sqlite(request: pytest.FixtureRequest, tmp: Path) -> StateStore:
    return SqliteStateStore(tmp / "state.sqlite")


def _firestore(request: pytest.FixtureRequest, tmp: Path) -> FirestoreStateStore:
    request.getfixturevalue("emulator_env")(request.getfixturevalue("firestore_emulator"))
    # Built as config.py builds it: no client given, the emulator found through the environment.
    return FirestoreStateStore(project=EMULATOR_PROJECT, prefix=f"t{uuid.uuid4().hex[:12]}-")


ADAPTERS: dict[str, Callable[[pytest.FixtureRequest, Path], StateStore]] = {
    "sqlite": _sqlite,
    "firestore": _firestore,
}
T0 = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)


@pytest.fixture(params=sorted(ADAPTERS))
def state(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    return ADAPTERS[request.param](request, tmp_path)


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


def test_audit_records_round_trip_replace_and_read_in_one_call(state: StateStore) -> None:
    a = AuditRecord(
        "BRK-B",
        verified_at=T0,
        differences={"kinds": ["split"], "evidence": {"split_ratios": ["10:1"]}},
        pending={"2024-01-05": {"open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5}},
        suspect={"at": T0.isoformat(), "reason": "starts later", "answer_first": "2020-01-02"},
        purged_before=date(2020, 1, 2),
    )
    b = AuditRecord("^GSPC")
    assert state.get_audits(["BRK-B", "^GSPC"]) == {}
    state.put_audit(a)
    state.put_audit(b)
    assert state.get_audits(["BRK-B", "^GSPC", "NOPE", "BRK-B"]) == {"BRK-B": a, "^GSPC": b}
    newer = AuditRecord("BRK-B", verified_at=T0 + timedelta(days=7))
    state.put_audit(newer)  # replaces the whole record: pending and suspect are gone
    assert state.get_audits(["BRK-B"]) == {"BRK-B": newer}
    assert state.list_audits() == [newer, b]
    assert state.get_audits([]) == {}


# --------------------------------------------------------------------------- more of the contract


def _one_batch_run(run_id: str, batches: int, created_at: datetime = T0) -> RunRecord:
    return RunRecord(
        run_id,
        "scheduled",
        created_at,
        tuple(f"{run_id}-b{i}" for i in range(batches)),
        batches,
        {"universe": "default"},
        tuple((f"S{i}",) for i in range(batches)),
    )


@pytest.mark.timeout(120)
def test_batches_recorded_concurrently_on_different_batches_lose_nothing(
    state: StateStore,
) -> None:
    run = _one_batch_run("r8", 8)
    assert state.create_run(run) is True

    def finish(i: int) -> BatchRecord:
        outcome = SymbolOutcome(f"S{i}", "ok", rows_written=i, generation=100 + i)
        return state.update_batch(
            "r8", f"r8-b{i}", lambda old: BatchRecord("r8", f"r8-b{i}", T0, (outcome,))
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(finish, range(8)))
    status = state.get_run("r8")
    assert status is not None and status.complete
    assert [b.batch_id for b in status.batches] == [f"r8-b{i}" for i in range(8)]
    assert [(o.symbol, o.rows_written, o.generation) for o in status.outcomes()] == [
        (f"S{i}", i, 100 + i) for i in range(8)
    ]


@pytest.mark.timeout(120)
def test_two_deliveries_of_one_batch_finishing_together_keep_both_outcomes(
    state: StateStore,
) -> None:
    """A redelivered batch overlapping the first delivery: each adds its symbol's outcome to
    what is stored. A delivery told TransientError is redelivered, as Pub/Sub would."""
    state.create_run(_one_batch_run("rr", 1))
    start = threading.Barrier(2)

    def deliver(symbol: str) -> None:
        start.wait()
        for _ in range(5):
            try:
                state.update_batch(
                    "rr",
                    "rr-b0",
                    lambda old: BatchRecord(
                        "rr",
                        "rr-b0",
                        T0,
                        (*(old.outcomes if old else ()), SymbolOutcome(symbol, "ok")),
                    ),
                )
                return
            except TransientError:
                continue
        raise AssertionError(f"{symbol}: still contended after 5 deliveries")

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(deliver, ["AAA", "BBB"]))
    batch = state.get_batch("rr", "rr-b0")
    assert batch is not None
    assert sorted(o.symbol for o in batch.outcomes) == ["AAA", "BBB"]


def test_redelivered_create_run_changes_nothing(state: StateStore) -> None:
    first = _one_batch_run("dup", 2)
    assert state.create_run(first) is True
    other = RunRecord(
        "dup", "manual", T0 + timedelta(hours=1), ("x",), 1, {"u": "other"}, (("X",),)
    )
    assert state.create_run(other) is False
    status = state.get_run("dup")
    assert status is not None and status.run == first and status.batches == ()
    latest = state.latest_run()
    assert latest is not None and latest.run == first


def test_latest_run_is_the_newest_and_ties_go_to_the_greatest_run_id(state: StateStore) -> None:
    assert state.latest_run() is None
    for run_id, hours in [("a-old", 0), ("c-newest", 2), ("b-middle", 1)]:
        state.create_run(_one_batch_run(run_id, 1, T0 + timedelta(hours=hours)))
    latest = state.latest_run()
    assert latest is not None and latest.run.run_id == "c-newest"
    # "r~" sorts after "rz", but its escaped document id ("r_7E") sorts before it.
    later = T0 + timedelta(hours=3)
    for run_id in ["r~", "rz"]:
        state.create_run(_one_batch_run(run_id, 1, later))
    latest = state.latest_run()
    assert latest is not None and latest.run.run_id == "r~"


def test_every_record_round_trips_equal(state: StateStore) -> None:
    tokyo = timezone(timedelta(hours=9))
    created = datetime(2026, 11, 21, 7, 0, 0, 123456, tzinfo=tokyo)  # aware, not UTC
    run = RunRecord(
        "rt",
        "backfill",
        created,
        ("rt-b0", "rt-b1"),
        3,
        {"universe": "x", "start": "2020-01-01", "end": None, "full": True, "n": {"k": [1, 2.5]}},
        (("AAPL", "^GSPC"), ("EURUSD=X",)),
    )
    assert state.create_run(run)
    outcomes = (
        SymbolOutcome(
            "AAPL",
            "restated",
            rows_written=5000,
            rows_new=3,
            rows_quarantined=1,
            provisional_skipped=1,
            generation=1765432101234567,
            restatement={"kinds": ["split"], "ratio": 20.0, "dates": ["2022-07-18"]},
        ),
        SymbolOutcome("^GSPC", "failed", error_kind="rate_limited", error="429 Too Many"),
    )
    batch = BatchRecord("rt", "rt-b0", T0 + timedelta(microseconds=7), outcomes)
    state.record_batch(batch)
    status = state.get_run("rt")
    assert status is not None
    assert status.run == run and status.batches == (batch,)
    assert isinstance(status.run.batch_ids, tuple) and isinstance(status.batches[0].outcomes, tuple)
    assert state.get_batch("rt", "rt-b0") == batch

    row = {"date": "2022-05-03", "open": None, "high": 1.5, "volume": 0, "note": "é"}
    q = QuarantineRecord("AET.L", date(2022, 5, 3), "not_finite", row, "rt")
    state.add_quarantine([q])
    assert state.quarantine("AET.L") == [q]

    r = RestatementRecord(
        "GOOG", created, ("split", "dividend"), {"split": "20:1", "old": [1.0, 2.0]}, "rt"
    )
    state.record_restatement(r)
    assert state.restatements("GOOG") == [r]
    assert isinstance(state.restatements("GOOG")[0].kinds, tuple)

    symbol = SymbolRecord("BRK-B", ("nyse", "sp500"), ("finance",), True)
    state.upsert_symbols([symbol])
    assert state.list_symbols() == [symbol]

    profile = {"symbol": "GOOG", "generation": 7, "stats": {"rows": 10, "gaps": [], "x": None}}
    state.put_profile("GOOG", profile)
    assert state.get_profile("GOOG") == profile


AWKWARD = ["BRK-B", "^GSPC", "EURUSD=X", "7203.T", "BF/B", "BF_2FB", ".", "..", "__X__", "Ä"]


def test_awkward_symbols_keep_separate_records(state: StateStore) -> None:
    state.upsert_symbols([SymbolRecord(s, ("u",), (s,)) for s in AWKWARD])
    assert [(r.symbol, r.tags) for r in state.list_symbols("u")] == sorted(
        (s, (s,)) for s in AWKWARD
    )
    for i, s in enumerate(AWKWARD):
        state.add_quarantine([QuarantineRecord(s, date(2024, 1, 2), "bad", {"i": i}, "r")])
        state.record_restatement(RestatementRecord(s, T0, ("split",), {"i": i}, f"run/{i}"))
        state.put_profile(s, {"symbol": s, "generation": i})
    for i, s in enumerate(AWKWARD):
        assert [q.row for q in state.quarantine(s)] == [{"i": i}]
        assert [(x.run_id, x.evidence) for x in state.restatements(s)] == [(f"run/{i}", {"i": i})]
        assert state.get_profile(s) == {"symbol": s, "generation": i}
    assert [p["symbol"] for p in state.list_profiles()] == sorted(AWKWARD)
    # run and batch ids with "/" too
    run = RunRecord("run/1", "manual", T0, ("run/1/b0",), 1, {}, (("BF/B",),))
    assert state.create_run(run)
    state.record_batch(BatchRecord("run/1", "run/1/b0", T0, (SymbolOutcome("BF/B", "ok"),)))
    status = state.get_run("run/1")
    assert status is not None and status.run == run and status.complete


def test_quarantine_and_registry_beyond_one_write_batch(state: StateStore) -> None:
    """More than Firestore's 500 writes in one call, each row given twice."""
    rows = [
        QuarantineRecord("BIG", date(2000, 1, 1) + timedelta(days=i), "bad", {"i": i}, "r1")
        for i in range(600)
    ]
    state.add_quarantine(rows + rows)
    state.add_quarantine([QuarantineRecord(r.symbol, r.date, r.reason, r.row, "r2") for r in rows])
    assert state.quarantine("BIG") == rows
    symbols = [SymbolRecord(f"S{i:04d}", ("big",)) for i in range(600)]
    state.upsert_symbols(symbols)
    assert state.list_symbols("big") == symbols


def test_profile_of_equal_generation_replaces_and_missing_generation_is_zero(
    state: StateStore,
) -> None:
    state.put_profile("X", {"symbol": "X", "rows": 1})
    state.put_profile("X", {"symbol": "X", "rows": 2, "generation": 0})
    assert state.get_profile("X") == {"symbol": "X", "rows": 2, "generation": 0}
    state.put_profile("X", {"symbol": "X", "rows": 3, "generation": 5})
    state.put_profile("X", {"symbol": "X", "rows": 4, "generation": 5})
    state.put_profile("X", {"symbol": "X", "rows": 5})
    assert state.get_profile("X") == {"symbol": "X", "rows": 4, "generation": 5}


# --------------------------------------------------------------------------- Firestore only


@pytest.fixture
def firestore_state(request: pytest.FixtureRequest, tmp_path: Path) -> FirestoreStateStore:
    return _firestore(request, tmp_path)


def test_firestore_recording_batches_never_writes_the_run_document(
    firestore_state: FirestoreStateStore,
) -> None:
    store = firestore_state
    run = _one_batch_run("quiet", 3)
    store.create_run(run)
    run_doc = store.collection("runs").document("quiet")
    before = run_doc.get()
    store.record_batch(BatchRecord("quiet", "quiet-b0", T0, (SymbolOutcome("S0", "ok"),)))
    store.update_batch(
        "quiet",
        "quiet-b1",
        lambda old: BatchRecord("quiet", "quiet-b1", T0, (SymbolOutcome("S1", "ok"),)),
    )
    store.update_batch(
        "quiet",
        "quiet-b2",
        lambda old: BatchRecord("quiet", "quiet-b2", T0, (SymbolOutcome("S2", "ok"),)),
    )
    status = store.get_run("quiet")
    assert status is not None and status.complete
    after = run_doc.get()
    assert after.update_time == before.update_time and after.to_dict() == before.to_dict()
    assert [d.id for d in run_doc.collection("batches").stream()] == [
        "quiet-b0",
        "quiet-b1",
        "quiet-b2",
    ]


def test_firestore_document_ids_match_the_object_names(
    firestore_state: FirestoreStateStore,
) -> None:
    """A symbol's documents are named as its objects are (layout: `^GSPC` → `_5EGSPC`)."""
    store = firestore_state
    expected = {
        "BRK-B": "BRK-B",
        "^GSPC": "_5EGSPC",
        "EURUSD=X": "EURUSD_3DX",
        "7203.T": "7203.T",
        "BF/B": "BF_2FB",
        "..": "__2E_2E",
    }
    store.upsert_symbols([SymbolRecord(s) for s in expected])
    for s in expected:
        store.put_profile(s, {"generation": 1})
    assert sorted(d.id for d in store.collection("symbols").stream()) == sorted(expected.values())
    assert sorted(d.id for d in store.collection("profiles").stream()) == sorted(expected.values())


def test_firestore_refuses_naive_datetimes(firestore_state: FirestoreStateStore) -> None:
    """Firestore stores instants; a naive datetime would silently become UTC."""
    naive = RunRecord("naive", "manual", datetime(2026, 1, 1, 12), ("b",), 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        firestore_state.create_run(naive)
    assert firestore_state.get_run("naive") is None
