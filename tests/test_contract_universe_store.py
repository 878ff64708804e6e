"""The universe-store contract, run against every adapter: SQLite, and Firestore on its emulator
(each Firestore test under its own collection prefix)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from barlake.adapters.firestore_universes import FirestoreUniverseStore
from barlake.adapters.sqlite_state import SqliteStateStore
from barlake.adapters.sqlite_universes import SqliteUniverseStore
from barlake.core.universe import Membership, Universe
from barlake.ports import SymbolRecord, UniverseStore
from conftest import EMULATOR_PROJECT


def _sqlite(request: pytest.FixtureRequest, tmp: Path) -> UniverseStore:
    return SqliteUniverseStore(tmp / "state.sqlite")


def _firestore(request: pytest.FixtureRequest, tmp: Path) -> UniverseStore:
    request.getfixturevalue("emulator_env")(request.getfixturevalue("firestore_emulator"))
    return FirestoreUniverseStore(project=EMULATOR_PROJECT, prefix=f"u{uuid.uuid4().hex[:12]}-")


ADAPTERS: dict[str, Callable[[pytest.FixtureRequest, Path], UniverseStore]] = {
    "sqlite": _sqlite,
    "firestore": _firestore,
}


@pytest.fixture(params=sorted(ADAPTERS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> UniverseStore:
    return ADAPTERS[request.param](request, tmp_path)


D = date.fromisoformat


def test_universes_described_listed_replaced_and_deleted(store: UniverseStore) -> None:
    assert store.list_universes() == [] and store.get_universe("sp500") is None
    store.put_universe(Universe("sp500", ("index", "us"), "csv:sp500.csv", "S&P 500"))
    store.put_universe(Universe("dow30", ("index",)))
    store.put_universe(Universe("sp500", ("us", "index", "us"), "csv:sp500.csv", "S&P 500"))
    assert [u.name for u in store.list_universes()] == ["dow30", "sp500"]
    assert store.get_universe("sp500") == Universe(
        "sp500", ("index", "us"), "csv:sp500.csv", "S&P 500"
    )
    assert store.delete_universe("dow30") is True
    assert store.delete_universe("dow30") is False
    assert [u.name for u in store.list_universes()] == ["sp500"]


def test_members_replaced_whole_or_per_symbol(store: UniverseStore) -> None:
    store.put_universe(Universe("sp500"))
    periods = [
        Membership("AAPL", None, None),
        Membership("^GSPC", D("2001-01-02"), None),
        Membership("ENRN", D("1990-01-01"), D("2001-11-29")),
        Membership("TSLA", D("2020-12-21"), None),
        Membership("ENRN", D("2005-01-01"), D("2006-01-01")),
    ]
    store.replace_members("sp500", periods)
    got = store.members("sp500")
    assert got == sorted(periods, key=lambda m: (m.symbol, m.start or date.min))
    # One symbol's periods rewritten: the others untouched, an unmentioned period gone.
    store.replace_members(
        "sp500", [Membership("TSLA", D("2020-12-21"), D("2025-01-01"))], ["TSLA", "AAPL"]
    )
    assert {m.symbol for m in store.members("sp500")} == {"^GSPC", "ENRN", "TSLA"}
    assert store.members("sp500", "TSLA") == [Membership("TSLA", D("2020-12-21"), D("2025-01-01"))]
    assert store.members("sp500", "AAPL") == [] and store.members("sp500", "NOPE") == []
    assert store.members("sp500", "ENRN") == [m for m in periods if m.symbol == "ENRN"]
    # Another universe's members are separate; a whole replace drops what is not given.
    store.put_universe(Universe("dow30"))
    store.replace_members("dow30", [Membership("MSFT")])
    store.replace_members("sp500", [Membership("MSFT", D("2000-01-03"))])
    assert store.members("sp500") == [Membership("MSFT", D("2000-01-03"))]
    assert store.members("dow30") == [Membership("MSFT")]
    assert store.delete_universe("sp500") and store.members("sp500") == []


def test_sqlite_universe_tables_live_beside_the_state(tmp_path: Path) -> None:
    """Opening the universe store first (a new file) still leaves a valid state file."""
    path = tmp_path / "state.sqlite"
    universes = SqliteUniverseStore(path)
    universes.put_universe(Universe("demo"))
    state = SqliteStateStore(path)
    state.upsert_symbols([SymbolRecord("AAPL", ("demo",))])
    assert SqliteUniverseStore(path).get_universe("demo") == Universe("demo")
    assert [r.symbol for r in state.list_symbols("demo")] == ["AAPL"]
