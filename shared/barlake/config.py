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
FUNCTIONS = ("dispatch", "ingest", "weekly", "profile", "api")
_CLOUD = ("dispatch", "ingest", "weekly", "profile", "api")  # every function builds an App
_LOCAL: tuple[str, ...] = ()  # embedded-only: no deployed function reads it


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
    cache: str = _env("BARLAKE_CACHE", "memory", "Cache backend: memory or none.")
    provider: str = _env(
        "BARLAKE_PROVIDER", "yahoo", "Bar source: yahoo or replay:DIR.", ("ingest",)
    )
    batch_size: str = _env(
        "BARLAKE_BATCH_SIZE", "50", "Symbols per ingest batch (one message each).", ("dispatch",)
    )
    overlap_sessions: str = _env(
        "BARLAKE_OVERLAP_SESSIONS",
        "5",
        "Stored sessions re-fetched to detect restatements.",
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
        "BARLAKE_INGEST_BATCHES_TOPIC", INGEST_BATCHES, "Topic of ingest batches.", ("dispatch",)
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
        ("dispatch", "ingest", "weekly", "profile"),
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
            ("max_event_age_seconds", 7 * 86400),
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
            ("cache", {"memory", "none"}),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"{_var(name)}={getattr(self, name)!r} is not available in this build "
                    f"(choose from {', '.join(sorted(allowed))})"
                )
        cloud = [_var(n) for n in ("events", "state") if getattr(self, n) in CLOUD_BACKENDS]
        if cloud and not self.project:
            raise ConfigError(f"BARLAKE_PROJECT is required with {', '.join(cloud)} set")
        lake = Path(self.lake_dir)
        if lake.exists() and not lake.is_dir():
            raise ConfigError(f"BARLAKE_LAKE_DIR={self.lake_dir!r} is a file, not a folder")
        if self.sqlite_path and Path(self.sqlite_path).is_dir():
            raise ConfigError(f"BARLAKE_SQLITE_PATH={self.sqlite_path!r} is a folder, not a file")
        if self.provider != "yahoo" and not self.provider.startswith("replay:"):
            raise ConfigError(
                f"BARLAKE_PROVIDER must be yahoo or replay:DIR, got {self.provider!r}"
            )

    @property
    def state_path(self) -> Path:
        return Path(self.sqlite_path) if self.sqlite_path else Path(self.lake_dir) / "state.sqlite"


def _var(name: str) -> str:
    return next(f.metadata["env"] for f in fields(Settings) if f.name == name)


def make_provider(spec: str) -> Provider:
    if spec.startswith("replay:"):
        from barlake.adapters.replay_provider import ReplayProvider

        return ReplayProvider(spec.removeprefix("replay:"))
    from barlake.adapters.yfinance_provider import YFinanceProvider  # heavy import: only here

    return YFinanceProvider()


class LazyProvider:
    """Builds the configured provider on first fetch, so that read paths (show, status, the
    API) never import yfinance and pandas."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.name = "replay" if spec.startswith("replay:") else spec
        self._provider: Provider | None = None

    def fetch(
        self, symbols: Sequence[str], start: date | None, end: date | None
    ) -> dict[str, FetchResult]:
        if self._provider is None:
            self._provider = make_provider(self.spec)
        return self._provider.fetch(symbols, start, end)


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

    def __post_init__(self) -> None:
        from barlake.services.derived import ProfileService, WeeklyService
        from barlake.services.dispatch import DispatchService
        from barlake.services.ingest import IngestService
        from barlake.services.read import ReadService

        s = self.settings
        self.dispatch = DispatchService(
            self.state, self.bus, self.clock, int(s.batch_size), s.ingest_batches_topic
        )
        self.ingest = IngestService(
            self.raw,
            self.state,
            self.provider,
            self.clock,
            int(s.overlap_sessions),
            date.fromisoformat(s.default_start) if s.default_start else None,
        )
        self.weekly = WeeklyService(self.raw, self.derived)
        self.profile = ProfileService(self.raw, self.derived, self.state, self.clock)
        self.read = ReadService(self.raw, self.derived, self.state)

    def observe(self, callback: Callable[[SymbolOutcome], None] | None) -> None:
        self.ingest.on_outcome = callback


def _object_store(settings: Settings, bucket: str, on_finalize: Any = None) -> ObjectStore:
    if settings.storage == "gcs":
        from barlake.adapters.gcs_store import GcsObjectStore

        return GcsObjectStore(bucket, project=settings.project or None)
    from barlake.adapters.local_store import LocalObjectStore

    return LocalObjectStore(settings.lake_dir, bucket, on_finalize=on_finalize)


def _state_store(settings: Settings) -> StateStore:
    if settings.state == "firestore":
        from barlake.adapters.firestore_state import FirestoreStateStore

        return FirestoreStateStore(project=settings.project, database=settings.firestore_database)
    from barlake.adapters.sqlite_state import SqliteStateStore

    return SqliteStateStore(settings.state_path)


def _cache(settings: Settings) -> Cache:
    from barlake.adapters.memory_cache import MemoryCache
    from barlake.adapters.null_cache import NullCache

    return MemoryCache() if settings.cache == "memory" else NullCache()


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

    adapters: dict[str, Any] = {
        "raw": _object_store(settings, settings.raw_bucket, finalized),
        "derived": _object_store(settings, settings.derived_bucket),
        "state": _state_store(settings),
        "provider": provider or LazyProvider(settings.provider),
    }
    if instrument:  # per-event time spent in each port, for the function logs and the bench
        from barlake.timing import wrap

        kinds = {"raw": "storage", "derived": "storage", "state": "state", "provider": "fetch"}
        adapters = {name: wrap(a, kinds[name]) for name, a in adapters.items()}
        if settings.events != "inprocess":
            bus = wrap(bus, "bus")
    app = App(
        settings=settings,
        bus=bus,
        cache=_cache(settings),
        clock=clock or utc_now,
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
    return app.read.run(request.run_id or app.dispatch.run_id_for(request))
