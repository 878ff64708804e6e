"""Settings from the environment, and the one place that wires adapters into services.

Every variable is named here once; the same names are used by Terraform, the local stack and
the docs (README "Configuration"). Google backends (gcs, pubsub, firestore, upstash, redis) plug
in here when their adapters land; asking for one before then is a clear error, not a fallback.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from pathlib import Path
from typing import Any

from barlake.messages import (
    DEAD_LETTER,
    INGEST_BATCHES,
    INGEST_REQUESTS,
    RAW_OBJECT_FINALIZED,
    RUN_COMPLETED,
    IngestRequest,
)
from barlake.ports import (
    Cache,
    EventBus,
    FetchResult,
    ObjectStore,
    Provider,
    RunStatus,
    StateStore,
    SymbolOutcome,
)

CLOUD_BACKENDS = frozenset({"gcs", "pubsub", "firestore"})


class ConfigError(ValueError):
    """A setting that cannot work; the message names the variable."""


# The deployed functions (functions/<name>/main.py; the same names in Terraform).
FUNCTIONS = ("dispatch", "ingest", "weekly", "profile", "api", "panel")
_CLOUD = ("dispatch", "ingest", "weekly", "profile", "api", "panel")  # each builds an App
_LOCAL: tuple[str, ...] = ()  # embedded-only: no deployed function reads it
# The cache: the api reads through it; the writers announce each new object generation to it
# (so the api never serves a stale body): ingest, weekly, profile, and dispatch, whose repair
# sweep rebuilds derived outputs (barlake.services.reconcile).
_CACHE = ("dispatch", "ingest", "weekly", "profile", "api")


def _env(name: str, default: str, help_: str, used_by: tuple[str, ...] = _CLOUD) -> Any:
    """A setting: its variable, default, help (README table) and the deployed functions that
    read it (Terraform must set it for each of them; tests/test_infra_wiring.py checks)."""
    return field(default=default, metadata={"env": name, "help": help_, "used_by": used_by})


@dataclass(frozen=True)
class Settings:
    lake_dir: str = _env(
        "BARLAKE_LAKE_DIR", "lake", "Root folder of the embedded lake (buckets + state).", _LOCAL
    )
    raw_bucket: str = _env(
        "BARLAKE_RAW_BUCKET", "barlake-raw", "Bucket of daily bars (finalize triggers)."
    )
    derived_bucket: str = _env(
        "BARLAKE_DERIVED_BUCKET", "barlake-derived", "Bucket of weekly/monthly bars, profiles."
    )
    storage: str = _env("BARLAKE_STORAGE", "local", "Object store backend: local or gcs.")
    events: str = _env("BARLAKE_EVENTS", "inprocess", "Event bus backend: inprocess or pubsub.")
    state: str = _env("BARLAKE_STATE", "sqlite", "State store backend: sqlite or firestore.")
    sqlite_path: str = _env(
        "BARLAKE_SQLITE_PATH", "", "SQLite file (default <lake>/state.sqlite).", _LOCAL
    )
    cache: str = _env(
        "BARLAKE_CACHE", "memory", "Cache backend: memory, none, redis or upstash.", _CACHE
    )
    provider: str = _env(
        "BARLAKE_PROVIDER",
        "yahoo",
        "Bar source: yahoo, tiingo, alphavantage, polygon, replay:DIR, or a chain yahoo,tiingo.",
        ("ingest",),
    )
    tiingo_token: str = _env(
        "BARLAKE_TIINGO_TOKEN", "", "Tiingo API token (Secret Manager in deployment).", ("ingest",)
    )
    tiingo_url: str = _env(
        "BARLAKE_TIINGO_URL", "https://api.tiingo.com", "Tiingo base URL.", ("ingest",)
    )
    alphavantage_key: str = _env(
        "BARLAKE_ALPHAVANTAGE_KEY",
        "",
        "Alpha Vantage API key (Secret Manager in deployment).",
        ("ingest",),
    )
    alphavantage_url: str = _env(
        "BARLAKE_ALPHAVANTAGE_URL",
        "https://www.alphavantage.co",
        "Alpha Vantage base URL.",
        ("ingest",),
    )
    polygon_key: str = _env(
        "BARLAKE_POLYGON_KEY",
        "",
        "Polygon/Massive API key (Secret Manager in deployment).",
        ("ingest",),
    )
    polygon_url: str = _env(
        "BARLAKE_POLYGON_URL", "https://api.polygon.io", "Polygon/Massive base URL.", ("ingest",)
    )
    batch_size: str = _env(
        "BARLAKE_BATCH_SIZE",
        "50",
        "Symbols per ingest batch (one message each).",
        ("dispatch", "ingest"),
    )
    overlap_sessions: str = _env(
        "BARLAKE_OVERLAP_SESSIONS",
        "5",
        "Stored sessions re-fetched to detect restatements.",
        ("ingest",),
    )
    audit_period_days: str = _env(
        "BARLAKE_AUDIT_PERIOD_DAYS",
        "7",
        "The deep audit verifies every symbol's whole history at least this often (days).",
        ("ingest",),
    )
    default_start: str = _env(
        "BARLAKE_DEFAULT_START",
        "",
        "First date for new symbols (empty = full history).",
        ("ingest",),
    )
    ingest_requests_topic: str = _env(
        "BARLAKE_INGEST_REQUESTS_TOPIC", INGEST_REQUESTS, "Topic of run requests.", _LOCAL
    )
    ingest_batches_topic: str = _env(
        "BARLAKE_INGEST_BATCHES_TOPIC",
        INGEST_BATCHES,
        "Topic of ingest batches (and of the audit tick).",
        ("dispatch", "ingest"),
    )
    dead_letter_topic: str = _env(
        "BARLAKE_DEAD_LETTER_TOPIC", DEAD_LETTER, "Topic of undeliverable messages.", _LOCAL
    )
    project: str = _env(
        "BARLAKE_PROJECT", "", "Google Cloud project of the topics and Firestore (cloud only)."
    )
    firestore_database: str = _env(
        "BARLAKE_FIRESTORE_DATABASE", "(default)", "Firestore database id (cloud only)."
    )
    max_event_age_seconds: str = _env(
        "BARLAKE_MAX_EVENT_AGE_SECONDS",
        "21600",
        "Events older than this are acknowledged unprocessed: retries never run forever.",
        ("dispatch", "ingest", "weekly", "profile", "panel"),
    )
    redis_url: str = _env(
        "BARLAKE_REDIS_URL",
        "",
        "Redis for BARLAKE_CACHE=redis: redis://host:6379/0 (rediss:// for TLS).",
        _CACHE,
    )
    upstash_url: str = _env(
        "BARLAKE_UPSTASH_URL",
        "",
        "Upstash REST URL for BARLAKE_CACHE=upstash (https://…).",
        _CACHE,
    )
    upstash_token: str = _env(
        "BARLAKE_UPSTASH_TOKEN",
        "",
        "Upstash REST token (from Secret Manager in deployment).",
        _CACHE,
    )
    cache_budget_ms: str = _env(
        "BARLAKE_CACHE_BUDGET_MS",
        "50",
        "A cache call slower than this (ms) is abandoned; requests skip the cache for a while.",
        _CACHE,
    )
    api_keys: str = _env(
        "BARLAKE_API_KEYS",
        "",
        "Comma-separated API keys, sent as X-API-Key (Secret Manager); empty = no key needed.",
        ("api",),
    )
    run_completed_topic: str = _env(
        "BARLAKE_RUN_COMPLETED_TOPIC",
        RUN_COMPLETED,
        "Topic announcing a complete run (the panel function builds on it).",
        ("ingest",),
    )
    raw_noncurrent_days: str = _env(
        "BARLAKE_RAW_NONCURRENT_DAYS",
        "30",
        "Days the embedded raw store keeps replaced versions for as-of reads (0: none).",
        _LOCAL,
    )
    cache_memory_mb: str = _env(
        "BARLAKE_CACHE_MEMORY_MB",
        "64",
        "In-process cache (L1) in front of Redis/Upstash, MiB per instance (0: none).",
        ("api",),
    )
    benchmark_symbol: str = _env(
        "BARLAKE_BENCHMARK_SYMBOL",
        "^GSPC",
        "Default benchmark of /v1/analytics and `barlake analytics` (beta, alpha, correlation).",
        ("api",),
    )
    # Request pacing (barlake.pacing; README "Pacing and the request budget").
    pacer: str = _env(
        "BARLAKE_PACER",
        "memory",
        "Request budget shared by every ingest instance: memory (this process), redis or upstash "
        "(BARLAKE_REDIS_URL / BARLAKE_UPSTASH_*).",
        ("ingest",),
    )
    yahoo_requests_per_minute: str = _env(
        "BARLAKE_YAHOO_REQUESTS_PER_MINUTE",
        "55",
        "Requests per minute to Yahoo, all instances together (yfinance quotes ~60/min).",
        ("ingest",),
    )
    pacer_max_wait_s: str = _env(
        "BARLAKE_PACER_MAX_WAIT_S",
        "120",
        "Longest wait for the budget; beyond it the batch is retried later (transient).",
        ("ingest",),
    )
    pacer_jitter_ms: str = _env(
        "BARLAKE_PACER_JITTER_MS",
        "250",
        "Random delay (0 to this, ms) added after each paced wait.",
        ("ingest",),
    )
    pacer_instances: str = _env(
        "BARLAKE_PACER_INSTANCES",
        "1",
        "Ingest instances sharing the budget; one pacing alone (memory, Redis down) takes ÷ this.",
        ("ingest",),
    )
    yahoo_concurrency: str = _env(
        "BARLAKE_YAHOO_CONCURRENCY",
        "4",
        "Yahoo requests in flight at once per instance.",
        ("ingest",),
    )
    yahoo_quotes: str = _env(
        "BARLAKE_YAHOO_QUOTES",
        "on",
        "on: daily updates take the bar from Yahoo's quote (100 symbols a request) when it fits; "
        "off: one chart request per symbol.",
        ("ingest",),
    )
    outage_share: str = _env(
        "BARLAKE_OUTAGE_SHARE",
        "0.5",
        "Share of a batch's known symbols answering not-found/no-data that means a provider "
        "outage (retried), not delistings.",
        ("ingest",),
    )
    outage_min_symbols: str = _env(
        "BARLAKE_OUTAGE_MIN_SYMBOLS",
        "5",
        "Known symbols a batch needs before the outage rule applies.",
        ("ingest",),
    )
    delist_after_days: str = _env(
        "BARLAKE_DELIST_AFTER_DAYS",
        "3",
        "Not-found answers on distinct days (within 14, others succeeding) before a symbol is "
        "delisted.",
        ("ingest",),
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: str) -> Settings:
        env = os.environ if environ is None else environ
        values = {f.name: env.get(f.metadata["env"], f.default) for f in fields(cls)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Environment variable → help text: the table in the README, and Terraform's contract."""
        return {f.metadata["env"]: f.metadata["help"] for f in fields(cls)}

    def check(self) -> None:
        for name, most in (
            ("batch_size", 1000),
            ("overlap_sessions", 250),
            ("audit_period_days", 366),
            ("max_event_age_seconds", 7 * 86400),
            ("cache_budget_ms", 10_000),
        ):
            value = getattr(self, name)
            if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= most:
                raise ConfigError(
                    f"{_var(name)} must be a whole number from 1 to {most}, got {value!r}"
                )
        if self.default_start:
            try:
                date.fromisoformat(self.default_start)
            except ValueError as exc:
                raise ConfigError(
                    f"BARLAKE_DEFAULT_START is not a date: {self.default_start!r}"
                ) from exc
        for name, allowed in (
            ("storage", {"local", "gcs"}),
            ("events", {"inprocess", "pubsub"}),
            ("state", {"sqlite", "firestore"}),
            ("cache", {"memory", "none", "redis", "upstash"}),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"{_var(name)}={getattr(self, name)!r} is not available in this build "
                    f"(choose from {', '.join(sorted(allowed))})"
                )
        days = self.raw_noncurrent_days
        if not (days.isascii() and days.isdigit()) or int(days) > 36_500:
            raise ConfigError(
                f"BARLAKE_RAW_NONCURRENT_DAYS must be a whole number from 0 to 36500, got {days!r}"
            )
        if not (self.cache_memory_mb.isascii() and self.cache_memory_mb.isdigit()) or not (
            0 <= int(self.cache_memory_mb) <= 4096
        ):
            raise ConfigError(
                f"BARLAKE_CACHE_MEMORY_MB must be a whole number from 0 to 4096, got "
                f"{self.cache_memory_mb!r}"
            )
        if self.cache == "redis" and not self.redis_url.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ConfigError(
                "BARLAKE_CACHE=redis needs BARLAKE_REDIS_URL=redis://host:port/db "
                f"(or rediss://, unix://), got {self.redis_url!r}"
            )
        if self.cache == "upstash" and not (
            self.upstash_url.startswith(("https://", "http://")) and self.upstash_token
        ):
            raise ConfigError(
                "BARLAKE_CACHE=upstash needs BARLAKE_UPSTASH_URL (https://…) and "
                "BARLAKE_UPSTASH_TOKEN"
            )
        cloud = [_var(n) for n in ("events", "state") if getattr(self, n) in CLOUD_BACKENDS]
        if cloud and not self.project:
            raise ConfigError(f"BARLAKE_PROJECT is required with {', '.join(cloud)} set")
        lake = Path(self.lake_dir)
        if lake.exists() and not lake.is_dir():
            raise ConfigError(f"BARLAKE_LAKE_DIR={self.lake_dir!r} is a file, not a folder")
        if self.sqlite_path and Path(self.sqlite_path).is_dir():
            raise ConfigError(f"BARLAKE_SQLITE_PATH={self.sqlite_path!r} is a folder, not a file")
        from barlake import pacing
        from barlake.providers import spec_error

        pacing.check(self)
        if problem := spec_error(self.provider):
            raise ConfigError(problem)
        for name in ("tiingo_url", "alphavantage_url", "polygon_url"):
            if not getattr(self, name).startswith(("https://", "http://")):
                raise ConfigError(
                    f"{_var(name)} must be an http(s):// URL, got {getattr(self, name)!r}"
                )

    @property
    def state_path(self) -> Path:
        return Path(self.sqlite_path) if self.sqlite_path else Path(self.lake_dir) / "state.sqlite"


def _var(name: str) -> str:
    return next(f.metadata["env"] for f in fields(Settings) if f.name == name)


def make_provider(
    spec: str, settings: Settings | None = None, pacer: Any = None, concurrency: int = 4
) -> Provider:
    from barlake.providers import build_provider

    return build_provider(spec, settings, pacer, concurrency)


class LazyProvider:
    """Builds the configured provider on first fetch, so that read paths (show, status, the
    API) never import yfinance and pandas."""

    def __init__(
        self, spec: str, settings: Settings | None = None, pacer: Any = None, concurrency: int = 4
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.pacer, self.concurrency = pacer, concurrency
        self.name = "replay" if spec.startswith("replay:") else spec.split(":", 1)[0]
        first = spec.split(",")[0].strip()
        # a chain's first, named as its rows' provenance names it (yahoo-sim:URL → yahoo-sim)
        self.primary = "replay" if first.startswith("replay:") else first.split(":", 1)[0]
        self._provider: Provider | None = None

    def fetch(
        self, symbols: Sequence[str], start: date | None, end: date | None
    ) -> dict[str, FetchResult]:
        return self._built().fetch(symbols, start, end)

    def _built(self) -> Provider:
        if self._provider is None:
            self._provider = make_provider(self.spec, self.settings, self.pacer, self.concurrency)
        return self._provider

    @property
    def quotes(self) -> Any:
        """The provider's quotes, when it has them (AttributeError otherwise, as if absent)."""
        return self._built().quotes  # type: ignore[attr-defined]


@dataclass
class App:
    """Adapters and services, wired. Built once per process (per function instance)."""

    settings: Settings
    raw: ObjectStore
    derived: ObjectStore
    state: StateStore
    bus: EventBus
    cache: Cache
    provider: Provider
    clock: Callable[[], datetime]
    pacer: Any = None  # the request budget the provider draws from (barlake.pacing)
    universe_store: Any = None  # barlake.ports.UniverseStore, beside the state store

    def __post_init__(self) -> None:
        from barlake.services.derived import ProfileService, WeeklyService
        from barlake.services.dispatch import DispatchService
        from barlake.services.ingest import IngestService
        from barlake.services.lifecycle import LifecycleService
        from barlake.services.outage import OutageRule
        from barlake.services.read import ReadService
        from barlake.services.universes import UniverseService

        s = self.settings
        self.universes = UniverseService(self.universe_store or _universe_store(s), self.clock)
        self.dispatch = DispatchService(
            self.state, self.bus, self.clock, int(s.batch_size), s.ingest_batches_topic
        )
        self.dispatch.universes = self.universes
        from barlake.services.tiers import TierService

        self.tiers = TierService(self.universes, self.raw, self.clock)
        self.ingest = IngestService(
            self.raw,
            self.state,
            self.provider,
            self.clock,
            int(s.overlap_sessions),
            date.fromisoformat(s.default_start) if s.default_start else None,
            use_quotes=s.yahoo_quotes == "on",
            outage_rule=OutageRule(float(s.outage_share), int(s.outage_min_symbols)),
            lifecycle=LifecycleService(self.raw, self.state, int(s.delist_after_days)),
        )
        from barlake.services.audit import AuditService

        self.audit = AuditService(self.state, self.dispatch, self.clock, int(s.audit_period_days))
        self.weekly = WeeklyService(self.raw, self.derived)
        self.profile = ProfileService(self.raw, self.derived, self.state, self.clock)
        self.read = ReadService(self.raw, self.derived, self.state)
        from barlake.services.reconcile import Reconciler

        self.reconcile = Reconciler(self.raw, self.derived, self.weekly, self.profile)
        from barlake.services.panel import PanelService

        # GCS reads wait on the network: many in flight; a local disk needs no more than cores
        workers = 16 if s.storage == "gcs" else 2
        self.panel = PanelService(self.raw, self.derived, self.clock, workers)

    def observe(self, callback: Callable[[SymbolOutcome], None] | None) -> None:
        self.ingest.on_outcome = callback


def _object_store(settings: Settings, bucket: str, on_finalize: Any = None) -> ObjectStore:
    if settings.storage == "gcs":
        from barlake.adapters.gcs_store import GcsObjectStore

        return GcsObjectStore(bucket, project=settings.project or None)
    from barlake.adapters.local_store import LocalObjectStore

    # The raw bucket keeps replaced versions (as the cloud's does) for as-of reads.
    days = int(settings.raw_noncurrent_days) if bucket == settings.raw_bucket else 0
    return LocalObjectStore(
        settings.lake_dir, bucket, on_finalize=on_finalize, keep_versions_days=days or None
    )


def _state_store(settings: Settings) -> StateStore:
    if settings.state == "firestore":
        from barlake.adapters.firestore_state import FirestoreStateStore

        return FirestoreStateStore(project=settings.project, database=settings.firestore_database)
    from barlake.adapters.sqlite_state import SqliteStateStore

    return SqliteStateStore(settings.state_path)


def _universe_store(settings: Settings) -> Any:
    """Universes live where the state does (same SQLite file, same Firestore database)."""
    if settings.state == "firestore":
        from barlake.adapters.firestore_universes import FirestoreUniverseStore

        return FirestoreUniverseStore(
            project=settings.project, database=settings.firestore_database
        )
    from barlake.adapters.sqlite_universes import SqliteUniverseStore

    return SqliteUniverseStore(settings.state_path)


def cache_namespace(settings: Settings) -> str:
    """Whose entries these are. Bucket names are global on GCS, so keys (which hold them) are
    unique already; local lakes all have a barlake-raw bucket: their folder tells them apart."""
    if settings.storage != "local":
        return settings.storage
    import hashlib

    folder = str(Path(settings.lake_dir).resolve())
    return f"local-{hashlib.sha256(folder.encode()).hexdigest()[:12]}"


WRITER_BUDGET_MS = 1000


def make_cache(settings: Settings, *, writer: bool = False) -> Cache:
    """The cache BARLAKE_CACHE names. Redis and Upstash come behind the resilient wrapper (an
    in-process L1, the BARLAKE_CACHE_BUDGET_MS budget, a breaker): a cache never fails a
    request. Their clients are imported only here, so no other path pays for them.

    `writer`: the cache writers announce generations through. It waits longer (at least
    WRITER_BUDGET_MS) and keeps no L1: a lost announcement means stale reads until the
    generation key's TTL, a slow one only costs the writing function that time."""
    budget_ms = int(settings.cache_budget_ms)
    if writer:
        budget_ms = max(budget_ms, WRITER_BUDGET_MS)
    if settings.cache in ("redis", "upstash"):
        from barlake.adapters.resilient_cache import ResilientCache

        inner: Any
        if settings.cache == "redis":
            from barlake.adapters.redis_cache import RedisCache

            inner = RedisCache(settings.redis_url, timeout_s=budget_ms / 1000)
        else:
            from barlake.adapters.upstash_cache import UpstashCache

            inner = UpstashCache(
                settings.upstash_url, settings.upstash_token, timeout_s=budget_ms / 1000
            )
        from barlake.adapters.memory_cache import MemoryCache

        l1_mb = 0 if writer else int(settings.cache_memory_mb)
        l1 = MemoryCache(max_entries=50_000, max_bytes=l1_mb * 1024 * 1024)
        return ResilientCache(inner, budget_ms, l1=l1, namespace=cache_namespace(settings))
    if settings.cache == "memory":
        from barlake.adapters.memory_cache import MemoryCache

        return MemoryCache()
    from barlake.adapters.null_cache import NullCache

    return NullCache()


def build_app(
    settings: Settings,
    *,
    provider: Provider | None = None,
    clock: Callable[[], datetime] | None = None,
    instrument: bool = False,
) -> App:
    """Wire the adapters the settings name. Cloud backends (gcs, pubsub, firestore) are what
    the deployed functions and the local emulator stack use; the defaults are the embedded lake.

    With the in-process bus, the bus's subscriptions mirror the cloud's (requests → dispatch,
    batches → ingest, finalized → weekly and profile) and a local raw store announces every
    write on it as GCS would (object finalized). With Pub/Sub, the subscriptions and GCS's
    notifications live in the cloud (Terraform, or `barlake stack`).
    """
    from barlake.services.ingest import utc_now

    bus: EventBus
    finalized: Any = None
    if settings.events == "pubsub":
        from barlake.adapters.pubsub_bus import PubSubBus

        bus = PubSubBus(settings.project)
    else:
        from barlake.adapters.inprocess_bus import InProcessBus
        from barlake.messages import ObjectFinalized

        bus = InProcessBus(dead_letter_topic=settings.dead_letter_topic)

        def finalized(info: Any, bucket: str) -> None:
            event = ObjectFinalized(bucket, info.name, info.generation, dict(info.metadata))
            bus.publish(RAW_OBJECT_FINALIZED, event.to_json(), {"eventType": "OBJECT_FINALIZE"})

    cache = make_cache(settings)
    from barlake.pacing import make_pacer

    pacer = make_pacer(settings)
    adapters: dict[str, Any] = {
        "raw": _object_store(settings, settings.raw_bucket, finalized),
        "derived": _object_store(settings, settings.derived_bucket),
        "state": _state_store(settings),
        "provider": provider
        or LazyProvider(settings.provider, settings, pacer, int(settings.yahoo_concurrency)),
    }
    if instrument:  # per-event time spent in each port, for the function logs and the bench
        from barlake.timing import wrap

        kinds = {"raw": "storage", "derived": "storage", "state": "state", "provider": "fetch"}
        adapters = {name: wrap(a, kinds[name]) for name, a in adapters.items()}
        if settings.events != "inprocess":
            bus = wrap(bus, "bus")
    # Writers announce each generation they write to a shared cache: the API's cached reads
    # are never stale after a write (barlake.services.generations).
    from barlake.services.generations import announcing

    announcer = make_cache(settings, writer=True) if cache.shared else cache
    adapters["raw"] = announcing(adapters["raw"], announcer)
    adapters["derived"] = announcing(adapters["derived"], announcer)
    app = App(
        settings=settings,
        bus=bus,
        cache=cache,
        clock=clock or utc_now,
        pacer=pacer,
        **adapters,
    )
    if settings.events == "inprocess":
        _subscribe_in_process(app)
    return app


def _subscribe_in_process(app: App) -> None:
    from barlake import handlers
    from barlake.adapters.inprocess_bus import InProcessBus

    bus, s = app.bus, app.settings
    assert isinstance(bus, InProcessBus)
    bus.subscribe(s.ingest_requests_topic, lambda d, a: handlers.dispatch(app, d), "dispatch")
    bus.subscribe(s.ingest_batches_topic, lambda d, a: handlers.ingest(app, d), "ingest")
    bus.subscribe(RAW_OBJECT_FINALIZED, lambda d, a: handlers.weekly(app, d), "weekly")
    bus.subscribe(RAW_OBJECT_FINALIZED, lambda d, a: handlers.profile(app, d), "profile")
    bus.subscribe(s.run_completed_topic, lambda d, a: handlers.panel(app, d), "panel")


def build_embedded(
    settings: Settings,
    *,
    provider: Provider | None = None,
    clock: Callable[[], datetime] | None = None,
) -> App:
    """The no-cloud default: local folders, in-process events, SQLite, memory cache."""
    for name, embedded in (("storage", "local"), ("events", "inprocess"), ("state", "sqlite")):
        if getattr(settings, name) != embedded:
            raise ConfigError(f"the embedded lake needs {_var(name)}={embedded}")
    return build_app(settings, provider=provider, clock=clock)


def run_embedded(app: App, request: IngestRequest) -> RunStatus:
    """Publish a run request on the embedded bus, deliver everything it causes (dispatch,
    ingest, weekly, profile, retries) and return the run's status."""
    from barlake.adapters.inprocess_bus import InProcessBus

    if not isinstance(app.bus, InProcessBus):
        raise TypeError("run_embedded needs the in-process bus (BARLAKE_EVENTS=inprocess)")
    app.bus.publish(app.settings.ingest_requests_topic, request.to_json())
    app.bus.drain()
    status = app.read.run(request.run_id or app.dispatch.run_id_for(request))
    # Derived outputs an earlier, killed run left missing or behind (metadata only when none).
    app.reconcile.reconcile([s for batch in status.run.batch_symbols for s in batch])
    return status
