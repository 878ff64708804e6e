"""State store on Firestore, with exactly the behaviour of the SQLite adapter.

Firestore takes about one write per second per document (and its emulator livelocks on
contended transactions), so nothing here is a shared counter or a hot document:

    {prefix}symbols/{symbol}                       one per symbol: universes, tags, active
    {prefix}runs/{run}                             written once, by create(); never updated
    {prefix}runs/{run}/batches/{batch}             one per batch; update_batch transacts on it
    {prefix}quarantine/{symbol}/rows/{sha256}      one per (symbol, date, reason, row), create()
    {prefix}restatements/{symbol}/by_run/{run}     one per (symbol, run), as SQLite's key
    {prefix}profiles/{symbol}                      one per symbol, generation compared in a txn

A run's completeness is read from its batch documents against the batch list fixed in the run
document. Free-form values (run params, batch symbols, outcomes, quarantined rows, evidence,
profiles) are stored as the same sorted JSON text SQLite stores, so they come back identical
(tuples as lists, dates as strings) and never hit Firestore's rules against nested arrays and
non-string keys; nothing queries inside them. Datetimes are Firestore timestamps, read back as
UTC (an aware datetime in another zone comes back equal; a naive one is refused rather than
guessed), dates ISO strings. Transient gRPC errors, and transactions still contended after a
bounded number of attempts, become TransientError so services leave the message to be
redelivered.

Indexes: only Firestore's automatic single-field ones (runs.created_at for latest_run,
symbols.universes / symbols.active for list_symbols); every other listing reads one small
subcollection and sorts in Python. No composite index is needed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any, ParamSpec, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.bulk_batch import BulkWriteBatch

from barlake.ports import (
    AuditRecord,
    BatchRecord,
    QuarantineRecord,
    RestatementRecord,
    RunRecord,
    RunStatus,
    SymbolOutcome,
    SymbolRecord,
    TransientError,
)

MAX_WRITES_PER_BATCH = 500  # Firestore's limit for one commit / batch_write
TRANSACTION_ATTEMPTS = 5

# gRPC codes worth a redelivery. The client's default retry has already retried most of them.
_TRANSIENT = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.Aborted,
    gexc.ResourceExhausted,
    gexc.InternalServerError,
    gexc.RetryError,
)
_OK, _ALREADY_EXISTS = 0, 6  # google.rpc.Code values in a batch_write response
# DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNAVAILABLE: the same set as above
_TRANSIENT_CODES = {4, 8, 10, 13, 14}

P = ParamSpec("P")
R = TypeVar("R")


def _transient(method: Callable[P, R]) -> Callable[P, R]:
    """Turn Firestore's retryable errors into barlake's TransientError."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except _TRANSIENT as exc:
            raise TransientError(f"firestore: {type(exc).__name__}: {exc}") from exc

    return wrapper


# --------------------------------------------------------------------------- encoding

_SAFE = re.compile(r"[A-Za-z0-9.\-]")


def doc_id(text: str) -> str:
    """A document id for any string, injective and never '/', '.', '..' or `__…__`.

    Keeps [A-Za-z0-9.-] and writes every other UTF-8 byte as `_XX` (so `_` itself is escaped):
    for a Yahoo symbol this is exactly barlake.core.layout.symbol_key (`^GSPC` → `_5EGSPC`), so
    a symbol's document and its objects share one name. layout's function itself is not used
    because it normalises and rejects what is not a Yahoo symbol, and the store must accept
    every string SQLite accepts.
    """
    if text in ("", ".", ".."):
        return "_" + "".join(f"_{b:02X}" for b in text.encode())  # "_" alone cannot arise
    return "".join(
        c if _SAFE.fullmatch(c) else "".join(f"_{b:02X}" for b in c.encode()) for c in text
    )


def _json(value: Any) -> str:
    """The encoding SQLite's adapter uses, so both give back the same values."""
    return json.dumps(value, sort_keys=True, default=str)


def _timestamp(value: datetime, what: str) -> datetime:
    """Firestore keeps instants: a naive datetime would be silently read as UTC, so refuse it."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _datetime(value: datetime) -> datetime:
    """A plain UTC datetime from Firestore's DatetimeWithNanoseconds."""
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        tzinfo=UTC,
    )


def _quarantine_id(r: QuarantineRecord) -> str:
    """The identity SQLite's primary key gives a quarantined row: (symbol, date, reason, row)."""
    key = _json(
        {"symbol": r.symbol, "date": r.date.isoformat(), "reason": r.reason, "row": dict(r.row)}
    )
    return hashlib.sha256(key.encode()).hexdigest()


def _batch_doc(batch: BatchRecord) -> dict[str, Any]:
    return {
        "run_id": batch.run_id,
        "batch_id": batch.batch_id,
        "finished_at": _timestamp(batch.finished_at, "BatchRecord.finished_at"),
        "outcomes": _json([asdict(o) for o in batch.outcomes]),
    }


def _batch_record(data: Mapping[str, Any]) -> BatchRecord:
    return BatchRecord(
        data["run_id"],
        data["batch_id"],
        _datetime(data["finished_at"]),
        tuple(SymbolOutcome(**o) for o in json.loads(data["outcomes"])),
    )


def _chunks(items: Sequence[R], size: int = MAX_WRITES_PER_BATCH) -> Iterable[Sequence[R]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --------------------------------------------------------------------------- the store


CONTENTION_ROUNDS = 4  # rounds of the library's transaction attempts (see _transact)
CAS_ATTEMPTS = 12  # update_batch's read → conditional write rounds (see update_batch)


class FirestoreStateStore:
    def __init__(
        self,
        client: firestore.Client | None = None,
        *,
        project: str | None = None,
        database: str = "(default)",
        prefix: str = "",
        transaction_attempts: int = TRANSACTION_ATTEMPTS,
    ) -> None:
        # With FIRESTORE_EMULATOR_HOST set, the client library talks to the emulator by itself.
        self.client = client or firestore.Client(project=project, database=database)
        self.prefix = prefix
        self.transaction_attempts = transaction_attempts

    def collection(self, name: str) -> firestore.CollectionReference:
        """A top-level collection, under this store's prefix."""
        return self.client.collection(f"{self.prefix}{name}")

    def _run_ref(self, run_id: str) -> firestore.DocumentReference:
        return self.collection("runs").document(doc_id(run_id))

    def _batch_ref(self, run_id: str, batch_id: str) -> firestore.DocumentReference:
        return self._run_ref(run_id).collection("batches").document(doc_id(batch_id))

    def _transact(self, body: Callable[[firestore.Transaction], R]) -> R:
        """Run body in a transaction, retried on contention a bounded number of times.

        The library retries a lost transaction at once; contenders that collided once then
        collide again. So between rounds of its attempts we wait a jittered, growing pause
        (up to ~1.5 s in all), which spreads them out, before giving up as transient."""
        last: Exception | None = None
        for round_ in range(CONTENTION_ROUNDS):
            if round_:
                time.sleep(random.uniform(0, 0.1 * 2**round_))
            transaction = self.client.transaction(max_attempts=self.transaction_attempts)
            try:
                return firestore.transactional(body)(transaction)
            except ValueError as exc:  # the library's "Failed to commit transaction in N attempts"
                if not isinstance(exc.__cause__, gexc.Aborted):
                    raise
                last = exc
        raise TransientError(f"firestore: contention: {last}") from last

    # -- registry
    @_transient
    def upsert_symbols(self, records: Sequence[SymbolRecord]) -> None:
        latest = {doc_id(r.symbol): r for r in records}  # one write per document; last wins
        for chunk in _chunks(list(latest.items())):
            batch = self.client.batch()
            for key, r in chunk:
                batch.set(
                    self.collection("symbols").document(key),
                    {
                        "symbol": r.symbol,
                        "universes": sorted(r.universes),
                        "tags": sorted(r.tags),
                        "active": bool(r.active),
                    },
                )
            batch.commit()

    @_transient
    def list_symbols(
        self, universe: str | None = None, active_only: bool = True
    ) -> list[SymbolRecord]:
        # One filter at most, so only Firestore's automatic single-field indexes are needed;
        # the other condition is checked here (inactive symbols are few).
        query: Any = self.collection("symbols")
        if universe is not None:
            query = query.where(
                filter=firestore.FieldFilter("universes", "array_contains", universe)
            )
        elif active_only:
            query = query.where(filter=firestore.FieldFilter("active", "==", True))
        out = [
            SymbolRecord(d["symbol"], tuple(d["universes"]), tuple(d["tags"]), bool(d["active"]))
            for d in (s.to_dict() or {} for s in query.stream())
        ]
        return sorted((r for r in out if r.active or not active_only), key=lambda r: r.symbol)

    # -- runs
    @_transient
    def create_run(self, run: RunRecord) -> bool:
        try:
            self._run_ref(run.run_id).create(
                {
                    "run_id": run.run_id,
                    "kind": run.kind,
                    "created_at": _timestamp(run.created_at, "RunRecord.created_at"),
                    "batch_ids": list(run.batch_ids),
                    "symbols": run.symbols,
                    "params": _json(dict(run.params)),
                    "batch_symbols": _json([list(b) for b in run.batch_symbols]),
                }
            )
        except gexc.AlreadyExists:
            return False
        return True

    @_transient
    def record_batch(self, batch: BatchRecord) -> None:
        self._batch_ref(batch.run_id, batch.batch_id).set(_batch_doc(batch))

    @_transient
    def get_batch(self, run_id: str, batch_id: str) -> BatchRecord | None:
        snap = self._batch_ref(run_id, batch_id).get()
        return _batch_record(snap.to_dict() or {}) if snap.exists else None

    @_transient
    def update_batch(
        self, run_id: str, batch_id: str, update: Callable[[BatchRecord | None], BatchRecord]
    ) -> BatchRecord:
        """Compare-and-swap on the one batch document: read it, apply update, write on the
        condition that it is unchanged since the read (create-only if it was absent), else
        read again after a jittered pause. update may run more than once, always on the record
        as then stored.

        Not a transaction: the emulator locks pessimistically and livelocks when deliveries of
        one batch contend; a precondition holds no lock, so a loser only re-reads."""
        ref = self._batch_ref(run_id, batch_id)
        for attempt in range(CAS_ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))
            snap = ref.get()
            record = update(_batch_record(snap.to_dict() or {}) if snap.exists else None)
            target = self._batch_ref(record.run_id, record.batch_id)
            try:
                if target.path != ref.path:  # written under the record's own key, as SQLite
                    target.set(_batch_doc(record))
                elif snap.exists:
                    option = self.client.write_option(last_update_time=snap.update_time)
                    ref.update(_batch_doc(record), option=option)
                else:
                    ref.create(_batch_doc(record))
            except (gexc.FailedPrecondition, gexc.Conflict, gexc.Aborted, gexc.NotFound):
                continue  # someone wrote (or created) it since our read: read again
            return record
        raise TransientError(f"firestore: batch {batch_id}: still contended after {attempt + 1}")

    def _status(self, data: Mapping[str, Any]) -> RunStatus:
        run = RunRecord(
            data["run_id"],
            data["kind"],
            _datetime(data["created_at"]),
            tuple(data["batch_ids"]),
            data["symbols"],
            json.loads(data["params"]),
            tuple(tuple(b) for b in json.loads(data["batch_symbols"])),
        )
        batches = [
            _batch_record(s.to_dict() or {})
            for s in self._run_ref(run.run_id).collection("batches").stream()
        ]
        return RunStatus(run, tuple(sorted(batches, key=lambda b: b.batch_id)))

    @_transient
    def get_run(self, run_id: str) -> RunStatus | None:
        snap = self._run_ref(run_id).get()
        return self._status(snap.to_dict() or {}) if snap.exists else None

    @_transient
    def latest_run(self) -> RunStatus | None:
        """Newest created_at, ties to the greatest run_id (as SQLite). Uses the automatic
        single-field index on runs.created_at; Firestore breaks ties by document id, which
        escaping may order differently from run_id, so a tie is settled here."""
        runs = self.collection("runs")
        top = [
            s.to_dict() or {}
            for s in runs.order_by("created_at", direction=firestore.Query.DESCENDING)
            .limit(2)
            .stream()
        ]
        if not top:
            return None
        if len(top) == 2 and top[0]["created_at"] == top[1]["created_at"]:
            tied = runs.where(
                filter=firestore.FieldFilter("created_at", "==", top[0]["created_at"])
            )
            top = [max((s.to_dict() or {} for s in tied.stream()), key=lambda d: d["run_id"])]
        return self._status(top[0])

    # -- quarantine and restatements
    def _quarantine_rows(self, symbol: str) -> firestore.CollectionReference:
        return self.collection("quarantine").document(doc_id(symbol)).collection("rows")

    @_transient
    def add_quarantine(self, records: Sequence[QuarantineRecord]) -> None:
        """create() per row through batch_write (not atomic, unlike a WriteBatch), so a row
        already stored fails alone with ALREADY_EXISTS and keeps the run that first saw it."""
        first: dict[tuple[str, str], QuarantineRecord] = {}
        for r in records:
            first.setdefault((r.symbol, _quarantine_id(r)), r)
        for chunk in _chunks(list(first.items())):
            batch = BulkWriteBatch(self.client)
            for (symbol, key), r in chunk:
                batch.create(
                    self._quarantine_rows(symbol).document(key),
                    {
                        "symbol": r.symbol,
                        "date": r.date.isoformat(),
                        "reason": r.reason,
                        "row": _json(dict(r.row)),
                        "run_id": r.run_id,
                    },
                )
            response = batch.commit()
            for status in response.status:
                if status.code in (_OK, _ALREADY_EXISTS):
                    continue
                error = f"firestore: quarantine write failed: code {status.code} {status.message}"
                if status.code in _TRANSIENT_CODES:
                    raise TransientError(error)
                raise RuntimeError(error)

    @_transient
    def quarantine(self, symbol: str) -> list[QuarantineRecord]:
        docs = [s.to_dict() or {} for s in self._quarantine_rows(symbol).stream()]
        docs.sort(key=lambda d: (d["date"], d["reason"], d["row"]))
        return [
            QuarantineRecord(
                d["symbol"],
                date.fromisoformat(d["date"]),
                d["reason"],
                json.loads(d["row"]),
                d["run_id"],
            )
            for d in docs
        ]

    def _restatements(self, symbol: str) -> firestore.CollectionReference:
        return self.collection("restatements").document(doc_id(symbol)).collection("by_run")

    @_transient
    def record_restatement(self, record: RestatementRecord) -> None:
        self._restatements(record.symbol).document(doc_id(record.run_id)).set(
            {
                "symbol": record.symbol,
                "run_id": record.run_id,
                "detected_at": _timestamp(record.detected_at, "RestatementRecord.detected_at"),
                "kinds": list(record.kinds),
                "evidence": _json(dict(record.evidence)),
            }
        )

    @_transient
    def restatements(self, symbol: str) -> list[RestatementRecord]:
        docs = [s.to_dict() or {} for s in self._restatements(symbol).stream()]
        docs.sort(key=lambda d: (d["detected_at"], d["run_id"]))
        return [
            RestatementRecord(
                d["symbol"],
                _datetime(d["detected_at"]),
                tuple(d["kinds"]),
                json.loads(d["evidence"]),
                d["run_id"],
            )
            for d in docs
        ]

    # -- profiles
    @_transient
    def put_profile(self, symbol: str, profile: Mapping[str, Any]) -> None:
        ref = self.collection("profiles").document(doc_id(symbol))
        generation = int(profile.get("generation", 0))
        body = _json(dict(profile))

        def body_tx(transaction: firestore.Transaction) -> None:
            snap = ref.get(transaction=transaction)
            stored = snap.to_dict() or {} if snap.exists else None
            if stored is not None and stored["generation"] > generation:
                return  # a late build of an older object: keep the newer profile
            transaction.set(ref, {"symbol": symbol, "generation": generation, "body": body})

        self._transact(body_tx)

    @_transient
    def get_profile(self, symbol: str) -> Mapping[str, Any] | None:
        snap = self.collection("profiles").document(doc_id(symbol)).get()
        return json.loads((snap.to_dict() or {})["body"]) if snap.exists else None

    @_transient
    def list_profiles(self) -> list[Mapping[str, Any]]:
        docs = [s.to_dict() or {} for s in self.collection("profiles").stream()]
        return [json.loads(d["body"]) for d in sorted(docs, key=lambda d: d["symbol"])]

    # -- history audits: one document per symbol, the record as JSON text
    def _audit_ref(self, symbol: str) -> firestore.DocumentReference:
        return self.collection("audits").document(doc_id(symbol))

    @_transient
    def put_audit(self, record: AuditRecord) -> None:
        self._audit_ref(record.symbol).set(
            {"symbol": record.symbol, "body": _json(record.to_json())}
        )

    @_transient
    def get_audits(self, symbols: Sequence[str]) -> dict[str, AuditRecord]:
        refs = [self._audit_ref(s) for s in dict.fromkeys(symbols)]
        out: dict[str, AuditRecord] = {}
        for snap in self.client.get_all(refs) if refs else ():
            if snap.exists:
                record = AuditRecord.from_json(json.loads((snap.to_dict() or {})["body"]))
                out[record.symbol] = record
        return out

    @_transient
    def list_audits(self) -> list[AuditRecord]:
        docs = [s.to_dict() or {} for s in self.collection("audits").stream()]
        records = [AuditRecord.from_json(json.loads(d["body"])) for d in docs]
        return sorted(records, key=lambda r: r.symbol)
