"""Ports: the small interfaces services are written against.

Each port has one embedded adapter (local folder, in-process bus, SQLite, memory cache) and,
later, a Google one (GCS, Pub/Sub, Firestore, Upstash). Services import this module, never an
adapter; `barlake.config` is the one place that wires adapters from the environment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa

from barlake.core.universe import Membership, Universe

# --------------------------------------------------------------------------- errors


class TransientError(RuntimeError):
    """Worth retrying later (a lost race, storage not yet consistent, a 5xx): services let it
    propagate so the message is redelivered; everything else is recorded and acknowledged."""


# --------------------------------------------------------------------------- object store


class PreconditionFailed(Exception):
    """A conditional write lost: the object's generation was not the one expected.

    The same error for every store (HTTP 412 on GCS), so services handle conflicts once.
    """

    def __init__(self, name: str, expected: int | None, actual: int | None) -> None:
        super().__init__(f"{name}: expected generation {expected}, found {actual}")
        self.name = name
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    generation: int
    size: int
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredObject:
    info: ObjectInfo
    data: bytes


@dataclass(frozen=True)
class ObjectVersion:
    """One generation of an object, live or noncurrent (replaced or deleted, and kept by the
    bucket's versioning for its retention): what an as-of read chooses from."""

    name: str
    generation: int
    size: int
    created: datetime  # when this generation was written
    noncurrent_since: datetime | None = None  # when it was replaced or deleted; None: live


@runtime_checkable
class ObjectStore(Protocol):
    """One bucket. Generations grow with every write of a name (GCS semantics)."""

    bucket: str

    def read(self, name: str) -> StoredObject | None:
        """The object's bytes and the generation they belong to, or None if absent."""
        ...

    def stat(self, name: str) -> ObjectInfo | None: ...

    def write(
        self,
        name: str,
        data: bytes,
        *,
        if_generation_match: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Replace the object atomically. if_generation_match=0 means create-only; a
        generation means compare-and-swap; None means unconditional. Raises
        PreconditionFailed when the condition does not hold."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...

    def delete(self, name: str) -> bool: ...

    def versions(self, name: str) -> list[ObjectVersion]:
        """Every generation of the object still kept (noncurrent ones only where the bucket
        keeps versions), oldest first; [] if it never existed or nothing is kept."""
        ...

    def read_version(self, name: str, generation: int) -> StoredObject | None:
        """That generation's bytes (live or noncurrent), or None if it is not kept."""
        ...


# --------------------------------------------------------------------------- event bus

Handler = Callable[[Mapping[str, Any], Mapping[str, str]], None]


@runtime_checkable
class EventBus(Protocol):
    """Topic-based publish. Messages are versioned JSON objects (see barlake.messages)."""

    def publish(
        self, topic: str, message: Mapping[str, Any], attributes: Mapping[str, str] | None = None
    ) -> str:
        """Publish and return the message id only once the message is accepted."""
        ...

    def publish_many(
        self,
        topic: str,
        messages: Sequence[tuple[Mapping[str, Any], Mapping[str, str] | None]],
    ) -> list[str]:
        """Publish all (message, attributes) at once and return their ids once every one is
        accepted; if any fails, the others are still waited for and the first error raised."""
        ...


# --------------------------------------------------------------------------- state store


@dataclass(frozen=True)
class SymbolRecord:
    symbol: str
    universes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    active: bool = True


@dataclass(frozen=True)
class RunRecord:
    """A run, fixed at creation: which batches exist and which symbols each one holds, so a
    redelivered request republishes exactly the same batches whatever the registry says now."""

    run_id: str
    kind: str  # "scheduled" | "backfill" | "manual"
    created_at: datetime
    batch_ids: tuple[str, ...]
    symbols: int
    params: Mapping[str, Any] = field(default_factory=dict)
    batch_symbols: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class SymbolOutcome:
    """What one ingest did to one symbol."""

    symbol: str
    status: str  # ok | unchanged | restated | failed
    rows_written: int = 0
    rows_new: int = 0
    rows_quarantined: int = 0
    provisional_skipped: int = 0
    generation: int | None = None
    error_kind: str | None = None
    error: str | None = None
    restatement: Mapping[str, Any] | None = None

    @property
    def retryable(self) -> bool:
        return self.status == "failed" and self.error_kind in {k.value for k in RETRYABLE}


@dataclass(frozen=True)
class BatchRecord:
    run_id: str
    batch_id: str
    finished_at: datetime
    outcomes: tuple[SymbolOutcome, ...]


@dataclass(frozen=True)
class RunStatus:
    run: RunRecord
    batches: tuple[BatchRecord, ...]

    @property
    def complete(self) -> bool:
        """Every batch recorded, and none still waiting on a retryable failure."""
        done = {b.batch_id for b in self.batches if not any(o.retryable for o in b.outcomes)}
        return all(b in done for b in self.run.batch_ids)

    def outcomes(self) -> list[SymbolOutcome]:
        return [o for b in self.batches for o in b.outcomes]


@dataclass(frozen=True)
class QuarantineRecord:
    symbol: str
    date: date
    reason: str
    row: Mapping[str, Any]
    run_id: str


@dataclass(frozen=True)
class RestatementRecord:
    symbol: str
    detected_at: datetime
    kinds: tuple[str, ...]
    evidence: Mapping[str, Any]
    run_id: str


@dataclass(frozen=True)
class AuditRecord:
    """What the lake knows about a symbol's whole history (see core/history.py): when it was
    last fully compared with the provider, what differed, what waits for confirmation, the
    last suspect answer and how far back the provider has purged history the lake keeps."""

    symbol: str
    verified_at: datetime | None = None
    differences: Mapping[str, Any] = field(default_factory=dict)  # kinds + evidence
    pending: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # ISO day → values
    suspect: Mapping[str, Any] | None = None  # {"at", "reason", "answer_first", "count"}
    purged_before: date | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "verified_at": self.verified_at.isoformat() if self.verified_at else None,
            "differences": dict(self.differences),
            "pending": {k: dict(v) for k, v in self.pending.items()},
            "suspect": dict(self.suspect) if self.suspect is not None else None,
            "purged_before": self.purged_before.isoformat() if self.purged_before else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditRecord:
        at = data.get("verified_at")
        purged = data.get("purged_before")
        return cls(
            symbol=str(data["symbol"]),
            verified_at=datetime.fromisoformat(at) if at else None,
            differences=dict(data.get("differences") or {}),
            pending={k: dict(v) for k, v in (data.get("pending") or {}).items()},
            suspect=dict(data["suspect"]) if data.get("suspect") else None,
            purged_before=date.fromisoformat(purged) if purged else None,
        )


@runtime_checkable
class StateStore(Protocol):
    """Symbol registry, run ledger and per-symbol records. Per-batch and per-symbol rows
    only: no shared counter that every writer would contend on."""

    def upsert_symbols(self, records: Sequence[SymbolRecord]) -> None: ...

    def list_symbols(
        self, universe: str | None = None, active_only: bool = True
    ) -> list[SymbolRecord]: ...

    def create_run(self, run: RunRecord) -> bool:
        """Create the run if absent; False (and no change) if it already exists."""
        ...

    def record_batch(self, batch: BatchRecord) -> None:
        """Store the batch's record, replacing any earlier one (callers combine outcomes
        first: see barlake.services.ingest.combine_outcomes)."""
        ...

    def get_batch(self, run_id: str, batch_id: str) -> BatchRecord | None: ...

    def update_batch(
        self, run_id: str, batch_id: str, update: Callable[[BatchRecord | None], BatchRecord]
    ) -> BatchRecord:
        """Atomically replace the batch's record with update(current record): two deliveries
        of one batch finishing together cannot overwrite each other's outcomes."""
        ...

    def get_run(self, run_id: str) -> RunStatus | None: ...

    def latest_run(self) -> RunStatus | None: ...

    def add_quarantine(self, records: Sequence[QuarantineRecord]) -> None:
        """Idempotent on (symbol, date, reason, row): the same bad row seen again (by the next
        run's overlap, or a redelivery) adds nothing and keeps the run that first saw it; two
        different rows for one date (a duplicated date) are both kept."""
        ...

    def quarantine(self, symbol: str) -> list[QuarantineRecord]: ...

    def record_restatement(self, record: RestatementRecord) -> None: ...

    def restatements(self, symbol: str) -> list[RestatementRecord]: ...

    def put_profile(self, symbol: str, profile: Mapping[str, Any]) -> None:
        """Keep the profile unless the stored one has a higher `generation` (a late build of
        an older object never overwrites a newer profile)."""
        ...

    def get_profile(self, symbol: str) -> Mapping[str, Any] | None: ...

    def list_profiles(self) -> list[Mapping[str, Any]]: ...

    def put_audit(self, record: AuditRecord) -> None:
        """Replace the symbol's audit record (one document per symbol)."""
        ...

    def get_audits(self, symbols: Sequence[str]) -> dict[str, AuditRecord]:
        """The records of those symbols that have one, in one round trip."""
        ...

    def list_audits(self) -> list[AuditRecord]: ...


# --------------------------------------------------------------------------- cache


@runtime_checkable
class Cache(Protocol):
    """A byte cache in front of storage. Never authoritative: a miss is always safe.

    It holds two kinds of entries, so that a read after a write is never stale:
    - values (get/set): bytes under a key that names one version of the content (callers put
      the object's generation in the key), so a key's value never changes and any tier, an
      in-process L1 included, may keep it until its TTL;
    - generations (generations/advance): the newest generation known for an object, a number
      that only moves forward. Writers advance it after each write; readers look it up to build
      value keys. Never kept in an in-process tier.
    `shared` says whether every process (writers included) sees the same entries: only a shared
    cache's generations can be trusted without asking storage.
    """

    shared: bool

    def get(self, key: str) -> bytes | None: ...

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None: ...

    def set_many(self, items: Mapping[str, bytes], ttl_seconds: int) -> None: ...

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every value and generation whose key starts with prefix; how many."""
        ...

    def generations(self, keys: Sequence[str]) -> list[int | None]: ...

    def advance(self, key: str, generation: int, ttl_seconds: int) -> None:
        """Store generation under key unless a larger one is there (then only refresh the
        TTL): two writers announcing out of order leave the newer generation."""
        ...


# --------------------------------------------------------------------------- providers


class ErrorKind(StrEnum):
    """Why a provider could not give a symbol's bars; decides retry or record-and-move-on."""

    NOT_FOUND = "not_found"  # unknown or delisted symbol: permanent
    NO_DATA = "no_data"  # symbol exists, nothing in the range asked: permanent for that range
    RATE_LIMITED = "rate_limited"  # back off, retry later
    TRANSIENT = "transient"  # network, 5xx, timeouts: retry
    UNREACHABLE = "unreachable"  # no route to the provider at all
    AUTH = "auth"  # key missing, refused or not entitled (a plan limit): fix the key, not a retry
    # Many known symbols "not found" at once: the provider is blocking us (services/outage.py)
    OUTAGE = "outage"


RETRYABLE = frozenset(
    {ErrorKind.RATE_LIMITED, ErrorKind.TRANSIENT, ErrorKind.UNREACHABLE, ErrorKind.OUTAGE}
)


@dataclass(frozen=True)
class ProviderError:
    kind: ErrorKind
    message: str

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


@dataclass(frozen=True)
class FetchResult:
    """One symbol's answer. bars follow BAR_SCHEMA, actions ACTION_SCHEMA.

    as_of is when the provider's data was current (Yahoo's regularMarketTime, or the fetch
    time): a bar whose session had not closed by then is provisional and is not stored.
    """

    symbol: str
    bars: pa.Table | None = None
    actions: pa.Table | None = None
    as_of: datetime | None = None
    error: ProviderError | None = None
    source: str | None = None  # the provider that answered (a chain's fallback); None: `name`


@runtime_checkable
class Provider(Protocol):
    name: str

    def fetch(
        self, symbols: Sequence[str], start: date | None, end: date | None
    ) -> dict[str, FetchResult]:
        """Daily bars for [start, end] (inclusive; start None = full history, end None = up
        to now). Every symbol asked gets a FetchResult, with bars or with an error."""
        ...


class Pacer(Protocol):
    """Paces provider requests: one budget per provider, shared by every instance and thread."""

    def acquire(self, provider: str, cost: int = 1) -> float:
        """Block until `cost` requests to `provider` may be sent; return the seconds waited.

        Raises TransientError when the wait would exceed the caller's patience (the batch is
        retried later rather than holding an instance hostage)."""
        ...


class UniverseStore(Protocol):
    """Named universes and their dated membership periods (barlake.core.universe), kept beside
    the state store (the same SQLite file / Firestore database)."""

    def put_universe(self, universe: Universe) -> None:
        """Create or replace the universe's description (its members are left as they are)."""
        ...

    def get_universe(self, name: str) -> Universe | None: ...

    def list_universes(self) -> list[Universe]: ...

    def delete_universe(self, name: str) -> bool:
        """Remove the universe and all its periods; False if there was none."""
        ...

    def replace_members(
        self, name: str, members: Sequence[Membership], symbols: Sequence[str] | None = None
    ) -> None:
        """Make `members` the periods of `symbols` (every symbol when None): rows of those
        symbols not in `members` go, the others are written."""
        ...

    def members(self, name: str, symbol: str | None = None) -> list[Membership]:
        """All periods (or one symbol's), sorted by symbol then start."""
        ...
