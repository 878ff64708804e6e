"""The local cloud stack: the Google emulators plus every function under functions-framework,
wired the way Terraform wires the cloud.

`barlake stack up` starts fake-gcs-server, the Pub/Sub and Firestore emulators, creates the
buckets, the topics and the subscriptions (push to each function, with retry and dead-letter
policies), starts one functions-framework process per function, and records every PID in
`<dir>/stack.json`; `barlake stack down` stops exactly those process groups. The end-to-end
tests and the pipeline bench drive the same class.

The one difference from the cloud: there is no Eventarc here, so fake-gcs-server publishes
its object-finalize notifications to the topic `raw-object-finalized`, which is pushed to
weekly and profile (in the cloud, Eventarc storage triggers on the raw bucket do that).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from barlake.config import FUNCTIONS, Settings
from barlake.emulators import (
    Emulator,
    start_fake_gcs,
    start_firestore,
    start_function,
    start_pubsub,
    stop_group,
)
from barlake.messages import RAW_OBJECT_FINALIZED

PROJECT = "barlake-local"
STATE_FILE = "stack.json"
FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"

# Local retry policy: the cloud's shape with shorter waits, so a test sees a retry in seconds.
MIN_BACKOFF_S = 1
MAX_BACKOFF_S = 5
MAX_DELIVERY_ATTEMPTS = 5  # Pub/Sub's minimum; then the message goes to dead-letter
ACK_DEADLINE_S = 120


@dataclass
class Component:
    name: str
    pid: int
    url: str
    log: str
    started: str = ""  # the process's start time (/proc), so `down` never kills a reused PID

    def ours(self) -> bool:
        """Still the process `up` started (same PID and start time), and still running."""
        return _alive(self.pid) and (not self.started or _start_time(self.pid) == self.started)


@dataclass
class StackInfo:
    """What `stack up` started: written to stack.json, read back by `stack down` / `env`."""

    root: str
    project: str
    env: dict[str, str]
    components: list[Component] = field(default_factory=list)

    def save(self) -> None:
        path = Path(self.root) / STATE_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, root: Path) -> StackInfo | None:
        path = root / STATE_FILE
        if not path.is_file():
            return None
        raw = json.loads(path.read_text())
        return cls(
            raw["root"], raw["project"], raw["env"], [Component(**c) for c in raw["components"]]
        )

    def url(self, name: str) -> str:
        return next(c.url for c in self.components if c.name == name)


@contextlib.contextmanager
def environ(env: Mapping[str, str]) -> Iterator[None]:
    """Set variables for the duration (the Google clients read their emulator hosts from it)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def cloud_settings_env(project: str, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The BARLAKE_* variables every function gets: the cloud backends, as Terraform sets them."""
    env = {
        "BARLAKE_STORAGE": "gcs",
        "BARLAKE_EVENTS": "pubsub",
        "BARLAKE_STATE": "firestore",
        "BARLAKE_PROJECT": project,
    }
    env.update(overrides or {})
    Settings.from_env(env)  # a bad setting fails here, before anything starts
    return env


def available_functions() -> list[str]:
    return [name for name in FUNCTIONS if (FUNCTIONS_DIR / name / "main.py").is_file()]


def up(
    root: Path,
    settings_env: Mapping[str, str] | None = None,
    project: str = PROJECT,
    push_endpoint: Callable[[str, str], str] | None = None,
) -> StackInfo:
    """Start everything; on any failure stop what was started and re-raise.

    push_endpoint(function, url) may route a push subscription elsewhere (the end-to-end tests
    put a proxy there that delivers every message several times, out of order).
    """
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    if (existing := StackInfo.load(root)) is not None and any(
        c.ours() for c in existing.components
    ):
        raise RuntimeError(f"a stack is already running from {root} (barlake stack down first)")
    env = cloud_settings_env(project, settings_env)
    settings = Settings.from_env(env)
    logs = root / "logs"
    for data in ("gcs-data", "pubsub-data"):  # a fresh stack: the emulators keep nothing else
        shutil.rmtree(logs / data, ignore_errors=True)
    info = StackInfo(str(root), project, dict(env))
    started: list[Emulator] = []

    def track(emulator: Emulator) -> Emulator:
        """Recorded in stack.json as soon as it runs: `down` finds it even if `up` dies."""
        started.append(emulator)
        info.components.append(
            Component(
                emulator.name,
                emulator.pid,
                emulator.url,
                str(emulator.log),
                _start_time(emulator.pid),
            )
        )
        info.env.update(emulator.env)
        info.save()
        return emulator

    with _terminate_as_exit():
        try:
            pubsub = track(start_pubsub(project, logs))
            firestore = track(start_firestore(project, logs))
            client_env = {**pubsub.env, **firestore.env}
            with environ(client_env):
                _create_topics(project, settings)
            gcs = track(
                start_fake_gcs(
                    logs,
                    pubsub=pubsub,
                    project=project,
                    topic=RAW_OBJECT_FINALIZED,
                    bucket=settings.raw_bucket,
                )
            )
            client_env.update(gcs.env)
            with environ(client_env):
                _create_buckets(project, settings)
            fn_env = {**client_env, **env}
            for name in available_functions():
                signature = "http" if name == "api" else "cloudevent"
                fn_source = FUNCTIONS_DIR / name
                track(
                    start_function(name, fn_source, signature, logs, {**fn_env, "K_SERVICE": name})
                )
            with environ(client_env):
                urls = {e.name.removeprefix("fn-"): e.url for e in started}
                if push_endpoint is not None:
                    urls = {name: push_endpoint(name, url) for name, url in urls.items()}
                _create_subscriptions(project, settings, urls)
        except BaseException:
            for emulator in reversed(started):
                emulator.stop()
            (root / STATE_FILE).unlink(missing_ok=True)
            raise
    return info


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """SIGTERM/SIGHUP while starting become SystemExit, so the cleanup above still runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    saved = {sig: signal.signal(sig, leave) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _start_time(pid: int) -> str:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); "" elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def down(root: Path) -> list[Component]:
    """Stop the process groups stack.json names, all at once (each stop waits for its group to
    exit: one after the other took 21–24 s); returns those that were still running."""
    info = StackInfo.load(root.resolve())
    if info is None:
        return []
    from concurrent.futures import ThreadPoolExecutor

    ours = [c for c in reversed(info.components) if c.ours()]
    with ThreadPoolExecutor(max_workers=max(1, len(ours))) as pool:  # each waits for its exit
        results = list(pool.map(lambda c: stop_group(c.pid), ours))
    stopped = [c for c, was_running in zip(ours, results, strict=True) if was_running]
    (root / STATE_FILE).unlink()
    return stopped


def _alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


# ------------------------------------------------------------------------ resources


def _create_topics(project: str, settings: Settings) -> None:
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    for topic in (
        settings.ingest_requests_topic,
        settings.ingest_batches_topic,
        settings.dead_letter_topic,
        RAW_OBJECT_FINALIZED,
        settings.run_completed_topic,
    ):
        publisher.create_topic(name=publisher.topic_path(project, topic))


def _create_buckets(project: str, settings: Settings) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project=project, credentials=AnonymousCredentials())
    for bucket in (settings.raw_bucket, settings.derived_bucket):
        client.create_bucket(bucket)


def subscriptions(settings: Settings) -> list[dict[str, Any]]:
    """Subscription → topic, pushed function (None = pull), dead-lettered or not. The same
    table as infra/pubsub.tf and the Eventarc triggers."""
    return [
        {
            "name": "dispatch",
            "topic": settings.ingest_requests_topic,
            "push": "dispatch",
            "dlq": True,
        },
        {"name": "ingest", "topic": settings.ingest_batches_topic, "push": "ingest", "dlq": True},
        {"name": "weekly", "topic": RAW_OBJECT_FINALIZED, "push": "weekly", "dlq": False},
        {"name": "profile", "topic": RAW_OBJECT_FINALIZED, "push": "profile", "dlq": False},
        {"name": "panel", "topic": settings.run_completed_topic, "push": "panel", "dlq": True},
        {
            "name": "dead-letter-inspect",
            "topic": settings.dead_letter_topic,
            "push": None,
            "dlq": False,
        },
    ]


def _create_subscriptions(project: str, settings: Settings, urls: Mapping[str, str]) -> None:
    from google.cloud import pubsub_v1
    from google.protobuf import duration_pb2

    subscriber = pubsub_v1.SubscriberClient()
    publisher = pubsub_v1.PublisherClient()
    for sub in subscriptions(settings):
        request: dict[str, Any] = {
            "name": subscriber.subscription_path(project, sub["name"]),
            "topic": publisher.topic_path(project, sub["topic"]),
            "ack_deadline_seconds": ACK_DEADLINE_S,
            "retry_policy": {
                "minimum_backoff": duration_pb2.Duration(seconds=MIN_BACKOFF_S),
                "maximum_backoff": duration_pb2.Duration(seconds=MAX_BACKOFF_S),
            },
        }
        if sub["push"]:
            request["push_config"] = {"push_endpoint": urls[sub["push"]].rstrip("/") + "/"}
        if sub["dlq"]:
            request["dead_letter_policy"] = {
                "dead_letter_topic": publisher.topic_path(project, settings.dead_letter_topic),
                "max_delivery_attempts": MAX_DELIVERY_ATTEMPTS,
            }
        subscriber.create_subscription(request=request)
