"""Universe store on SQLite: two tables in the state file, beside the registry.

    universes         (name) → tags, source, description
    universe_members  (universe, symbol, start) → end     ('' = open on either side)

Kept in its own adapter (not grown into sqlite_state.py) so the state schema stays as it is; the
tables are created here with IF NOT EXISTS. The file is opened through SqliteStateStore first
when it is new, so the state schema (and its version stamp) is always the one that made it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import date
from pathlib import Path
from typing import Any

from barlake.adapters.sqlite_state import immediate
from barlake.core.universe import Membership, Universe

_SCHEMA = """
CREATE TABLE IF NOT EXISTS universes (
    name TEXT PRIMARY KEY, tags TEXT NOT NULL, source TEXT NOT NULL, description TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS universe_members (
    universe TEXT NOT NULL, symbol TEXT NOT NULL, start TEXT NOT NULL, end TEXT NOT NULL,
    PRIMARY KEY (universe, symbol, start));
"""


def _d(value: str) -> date | None:
    return date.fromisoformat(value) if value else None


def _s(value: date | None) -> str:
    return value.isoformat() if value else ""


class SqliteUniverseStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:" and not Path(self.path).exists():
            from barlake.adapters.sqlite_state import SqliteStateStore

            SqliteStateStore(self.path)  # a new file gets the state schema and its version first
        self._db = sqlite3.connect(
            self.path, check_same_thread=False, timeout=30, isolation_level=None
        )
        self._lock = threading.Lock()
        with self._lock:
            self._db.executescript(_SCHEMA)

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return immediate(self._db, self._lock)

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self._tx() as db:
            return db.execute(sql, args).fetchall()

    def put_universe(self, universe: Universe) -> None:
        self._rows(
            "INSERT INTO universes VALUES (?,?,?,?) ON CONFLICT(name) DO UPDATE SET "
            "tags=excluded.tags, source=excluded.source, description=excluded.description",
            (
                universe.name,
                json.dumps(sorted(set(universe.tags))),
                universe.source,
                universe.description,
            ),
        )

    @staticmethod
    def _universe(row: tuple) -> Universe:
        name, tags, source, description = row
        return Universe(name, tuple(json.loads(tags)), source, description)

    def get_universe(self, name: str) -> Universe | None:
        rows = self._rows("SELECT * FROM universes WHERE name=?", (name,))
        return self._universe(rows[0]) if rows else None

    def list_universes(self) -> list[Universe]:
        return [self._universe(r) for r in self._rows("SELECT * FROM universes ORDER BY name")]

    def delete_universe(self, name: str) -> bool:
        with self._tx() as db:
            db.execute("DELETE FROM universe_members WHERE universe=?", (name,))
            return db.execute("DELETE FROM universes WHERE name=?", (name,)).rowcount > 0

    def replace_members(
        self, name: str, members: Sequence[Membership], symbols: Sequence[str] | None = None
    ) -> None:
        with self._tx() as db:
            if symbols is None:
                db.execute("DELETE FROM universe_members WHERE universe=?", (name,))
            else:
                db.executemany(
                    "DELETE FROM universe_members WHERE universe=? AND symbol=?",
                    [(name, s) for s in symbols],
                )
            db.executemany(
                "INSERT OR REPLACE INTO universe_members VALUES (?,?,?,?)",
                [(name, m.symbol, _s(m.start), _s(m.end)) for m in members],
            )

    def members(self, name: str, symbol: str | None = None) -> list[Membership]:
        one = "" if symbol is None else " AND symbol=?"
        rows = self._rows(
            f"SELECT symbol, start, end FROM universe_members WHERE universe=?{one} "
            "ORDER BY symbol, start",
            (name,) if symbol is None else (name, symbol),
        )
        return [Membership(s, _d(a), _d(b)) for s, a, b in rows]
