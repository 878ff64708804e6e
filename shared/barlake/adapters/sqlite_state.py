"""State store on SQLite: symbol registry, run ledger, quarantine, restatements, profiles.

One row per symbol and one row per batch — never a shared counter — so the same design holds on
Firestore, where a document takes about one write per second. Run completeness is derived by
counting batch rows against the run's batch list. Every write is an upsert keyed so that a
redelivered message rewrites the same row instead of adding one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

from barlake.ports import (
    AuditRecord,
    BatchRecord,
    QuarantineRecord,
    RestatementRecord,
    RunRecord,
    RunStatus,
    SymbolOutcome,
    SymbolRecord,
)

STATE_SCHEMA_VERSION = 1


class StateSchemaError(RuntimeError):
    """The SQLite file was made by a barlake with another state schema."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS symbols (
    symbol TEXT PRIMARY KEY, universes TEXT NOT NULL, tags TEXT NOT NULL, active INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, created_at TEXT NOT NULL,
    batch_ids TEXT NOT NULL, symbols INTEGER NOT NULL, params TEXT NOT NULL,
    batch_symbols TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    run_id TEXT NOT NULL, batch_id TEXT NOT NULL, finished_at TEXT NOT NULL, outcomes TEXT NOT NULL,
    PRIMARY KEY (run_id, batch_id));
CREATE TABLE IF NOT EXISTS quarantine (
    symbol TEXT NOT NULL, date TEXT NOT NULL, reason TEXT NOT NULL, run_id TEXT NOT NULL,
    row TEXT NOT NULL, PRIMARY KEY (symbol, date, reason, row));
CREATE TABLE IF NOT EXISTS restatements (
    symbol TEXT NOT NULL, run_id TEXT NOT NULL, detected_at TEXT NOT NULL, kinds TEXT NOT NULL,
    evidence TEXT NOT NULL, PRIMARY KEY (symbol, run_id));
CREATE TABLE IF NOT EXISTS profiles (
    symbol TEXT PRIMARY KEY, generation INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audits (symbol TEXT PRIMARY KEY, body TEXT NOT NULL);
"""


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


_UPSERT_BATCH = (
    "INSERT INTO batches VALUES (?,?,?,?) ON CONFLICT(run_id, batch_id) DO UPDATE SET "
    "finished_at=excluded.finished_at, outcomes=excluded.outcomes"
)


def _batch_row(batch: BatchRecord) -> tuple[str, str, str, str]:
    return (
        batch.run_id,
        batch.batch_id,
        batch.finished_at.isoformat(),
        _json([asdict(o) for o in batch.outcomes]),
    )


@contextmanager
def immediate(db: sqlite3.Connection, lock: threading.Lock) -> Iterator[sqlite3.Connection]:
    """One transaction holding SQLite's write lock from the first statement on (every SQLite
    store of the lake: state, universes)."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.rollback()
            raise
        db.commit()


class SqliteStateStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # Private to its owner (SQLite gives its -wal and -shm files the same mode).
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        # isolation_level=None: we issue BEGIN ourselves where a read-modify-write needs it.
        self._db = sqlite3.connect(
            self.path, check_same_thread=False, timeout=30, isolation_level=None
        )
        self._lock = threading.Lock()
        with self._lock:
            self._open_schema()

    def _open_schema(self) -> None:
        """WAL, then the schema. Switching a new file to WAL needs the file to itself, and
        SQLite may answer "database is locked" at once, without its busy timeout, while other
        processes open the same new lake (seen 1 in 96 opens): wait and try again, bounded
        like the busy timeout. Both steps are idempotent."""
        for attempt in range(200):
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._create_schema()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 199:
                    raise
                time.sleep(0.05)

    def _create_schema(self) -> None:
        """Tables and version in one transaction holding the write lock: processes opening a
        new lake together wait for each other, and none can see tables without a version."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if version != STATE_SCHEMA_VERSION and (version or tables):
                raise StateSchemaError(
                    f"{self.path}: state schema version {version}, this barlake needs "
                    f"{STATE_SCHEMA_VERSION} (made by another version: start a new lake)"
                )
            if not version:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={STATE_SCHEMA_VERSION}")
        except BaseException:
            self._db.rollback()
            raise
        self._db.commit()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return immediate(self._db, self._lock)

    def _exec(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self._tx() as db:
            return db.execute(sql, args).fetchall()

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._tx() as db:
            db.executemany(sql, rows)

    # -- registry
    def upsert_symbols(self, records: Sequence[SymbolRecord]) -> None:
        self._many(
            "INSERT INTO symbols VALUES (?,?,?,?) ON CONFLICT(symbol) DO UPDATE SET "
            "universes=excluded.universes, tags=excluded.tags, active=excluded.active",
            [
                (r.symbol, _json(sorted(r.universes)), _json(sorted(r.tags)), int(r.active))
                for r in records
            ],
        )

    def list_symbols(
        self, universe: str | None = None, active_only: bool = True
    ) -> list[SymbolRecord]:
        rows = self._exec("SELECT symbol, universes, tags, active FROM symbols ORDER BY symbol")
        out = [
            SymbolRecord(s, tuple(json.loads(u)), tuple(json.loads(t)), bool(a))
            for s, u, t, a in rows
        ]
        return [
            r
            for r in out
            if (universe is None or universe in r.universes) and (r.active or not active_only)
        ]

    # -- runs
    def create_run(self, run: RunRecord) -> bool:
        rows = self._exec(
            "INSERT INTO runs VALUES (?,?,?,?,?,?,?) "
            "ON CONFLICT(run_id) DO NOTHING RETURNING run_id",
            (
                run.run_id,
                run.kind,
                run.created_at.isoformat(),
                _json(list(run.batch_ids)),
                run.symbols,
                _json(dict(run.params)),
                _json([list(b) for b in run.batch_symbols]),
            ),
        )
        return bool(rows)

    def record_batch(self, batch: BatchRecord) -> None:
        self._exec(_UPSERT_BATCH, _batch_row(batch))

    @staticmethod
    def _batch(run_id: str, batch_id: str, finished_at: str, outcomes: str) -> BatchRecord:
        return BatchRecord(
            run_id,
            batch_id,
            datetime.fromisoformat(finished_at),
            tuple(SymbolOutcome(**o) for o in json.loads(outcomes)),
        )

    def _status(self, row: tuple) -> RunStatus:
        run_id, kind, created_at, batch_ids, symbols, params, batch_symbols = row
        run = RunRecord(
            run_id,
            kind,
            datetime.fromisoformat(created_at),
            tuple(json.loads(batch_ids)),
            symbols,
            json.loads(params),
            tuple(tuple(b) for b in json.loads(batch_symbols)),
        )
        rows = self._exec(
            "SELECT batch_id, finished_at, outcomes FROM batches WHERE run_id=? ORDER BY batch_id",
            (run_id,),
        )
        return RunStatus(run, tuple(self._batch(run_id, *r) for r in rows))

    def update_batch(
        self, run_id: str, batch_id: str, update: Callable[[BatchRecord | None], BatchRecord]
    ) -> BatchRecord:
        with self._tx() as db:  # the write lock is held across the read and the write
            rows = db.execute(
                "SELECT finished_at, outcomes FROM batches WHERE run_id=? AND batch_id=?",
                (run_id, batch_id),
            ).fetchall()
            record = update(self._batch(run_id, batch_id, *rows[0]) if rows else None)
            db.execute(_UPSERT_BATCH, _batch_row(record))
        return record

    def get_batch(self, run_id: str, batch_id: str) -> BatchRecord | None:
        rows = self._exec(
            "SELECT finished_at, outcomes FROM batches WHERE run_id=? AND batch_id=?",
            (run_id, batch_id),
        )
        return self._batch(run_id, batch_id, *rows[0]) if rows else None

    def get_run(self, run_id: str) -> RunStatus | None:
        rows = self._exec("SELECT * FROM runs WHERE run_id=?", (run_id,))
        return self._status(rows[0]) if rows else None

    def latest_run(self) -> RunStatus | None:
        rows = self._exec("SELECT * FROM runs ORDER BY created_at DESC, run_id DESC LIMIT 1")
        return self._status(rows[0]) if rows else None

    # -- quarantine and restatements
    def add_quarantine(self, records: Sequence[QuarantineRecord]) -> None:
        self._many(
            "INSERT OR IGNORE INTO quarantine VALUES (?,?,?,?,?)",
            [
                (r.symbol, r.date.isoformat(), r.reason, r.run_id, _json(dict(r.row)))
                for r in records
            ],
        )

    def quarantine(self, symbol: str) -> list[QuarantineRecord]:
        rows = self._exec(
            "SELECT symbol, date, reason, row, run_id FROM quarantine "
            "WHERE symbol=? ORDER BY date, reason",
            (symbol,),
        )
        return [
            QuarantineRecord(s, date.fromisoformat(d), r, json.loads(row), run)
            for s, d, r, row, run in rows
        ]

    def record_restatement(self, record: RestatementRecord) -> None:
        self._exec(
            "INSERT OR REPLACE INTO restatements VALUES (?,?,?,?,?)",
            (
                record.symbol,
                record.run_id,
                record.detected_at.isoformat(),
                _json(list(record.kinds)),
                _json(dict(record.evidence)),
            ),
        )

    def restatements(self, symbol: str) -> list[RestatementRecord]:
        rows = self._exec(
            "SELECT symbol, detected_at, kinds, evidence, run_id FROM restatements WHERE symbol=? "
            "ORDER BY detected_at",
            (symbol,),
        )
        return [
            RestatementRecord(
                s, datetime.fromisoformat(at), tuple(json.loads(k)), json.loads(e), run
            )
            for s, at, k, e, run in rows
        ]

    # -- profiles
    def put_profile(self, symbol: str, profile: Mapping[str, Any]) -> None:
        self._exec(
            "INSERT INTO profiles VALUES (?,?,?) ON CONFLICT(symbol) DO UPDATE SET "
            "generation=excluded.generation, body=excluded.body "
            "WHERE excluded.generation >= profiles.generation",
            (symbol, int(profile.get("generation", 0)), _json(dict(profile))),
        )

    def get_profile(self, symbol: str) -> Mapping[str, Any] | None:
        rows = self._exec("SELECT body FROM profiles WHERE symbol=?", (symbol,))
        return json.loads(rows[0][0]) if rows else None

    def list_profiles(self) -> list[Mapping[str, Any]]:
        return [json.loads(b) for (b,) in self._exec("SELECT body FROM profiles ORDER BY symbol")]

    # -- history audits
    def put_audit(self, record: AuditRecord) -> None:
        self._exec(
            "INSERT OR REPLACE INTO audits VALUES (?,?)", (record.symbol, _json(record.to_json()))
        )

    def get_audits(self, symbols: Sequence[str]) -> dict[str, AuditRecord]:
        out: dict[str, AuditRecord] = {}
        wanted = list(dict.fromkeys(symbols))
        for i in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for (body,) in self._exec(f"SELECT body FROM audits WHERE symbol IN ({marks})", chunk):
                record = AuditRecord.from_json(json.loads(body))
                out[record.symbol] = record
        return out

    def list_audits(self) -> list[AuditRecord]:
        rows = self._exec("SELECT body FROM audits ORDER BY symbol")
        return [AuditRecord.from_json(json.loads(b)) for (b,) in rows]
