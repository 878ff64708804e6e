"""A real redis-server on a free port, and an Upstash REST bridge in front of it.

No local Upstash server exists, so the bridge speaks the Upstash REST protocol (`POST /` with a
JSON command array, `POST /pipeline` and `/multi-exec` with a list of them, a Bearer token,
base64 results when `Upstash-Encoding: base64` is asked) and forwards each command to the
real Redis through redis-py: the real `upstash-redis` client then talks to real Redis. Used by
the tests and the benchmarks. `fault` makes the bridge misbehave on purpose ("down", "garbage",
"slow" with `delay_s`, "wrong-shape") so tests can prove a failing cache never fails a request.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis

from barlake.emulators import Emulator, EmulatorUnavailable, free_port


def redis_server_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise EmulatorUnavailable(
            "redis-server is not on PATH: apt-get install -y --no-install-recommends "
            "redis-server (or brew install redis)"
        )
    return path


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(log_dir: Path, port: int = 0, timeout: float = 20) -> Emulator:
    """redis-server in its own process group, no persistence; stop() stops it by PID."""
    port = port or free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / "redis.log"
    argv = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--save", "", "--appendonly", "no", "--dir", str(log_dir), "--logfile", str(log)]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = Emulator(
        "redis", f"127.0.0.1:{port}", proc.pid, {"BARLAKE_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    )
    server.log, server.process = log, proc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode}; see {log}")
        if _pong(port):
            return server
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"redis-server not ready on port {port} after {timeout:.0f} s; see {log}")


def _encode(value: Any, base64_: bool) -> Any:
    if isinstance(value, bytes):
        if value in (b"OK", b"PONG") and base64_:
            return value.decode()  # status replies come back as they are
        return base64.b64encode(value).decode() if base64_ else value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [_encode(v, base64_) for v in value]
    return value  # int, None


class UpstashBridge:
    """An Upstash-compatible REST endpoint on 127.0.0.1 in a background thread."""

    def __init__(self, redis_url: str, token: str = "test-token") -> None:
        self.token = token
        self.redis = redis.Redis.from_url(redis_url)
        self.redis.response_callbacks.clear()  # raw replies, as Upstash relays them
        self.fault: str | None = None
        self.delay_s = 0.0
        self.requests = 0
        bridge = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()  # headers and body leave as two writes: no Nagle delay
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                bridge.requests += 1
                fault = bridge.fault
                if fault == "slow":
                    time.sleep(bridge.delay_s)
                elif fault == "down":
                    self.close_connection = True
                    self._reply(503, b'{"error":"service unavailable"}')
                    return
                elif fault == "garbage":
                    self._reply(200, b"\x00\xff<html>not json")
                    return
                elif fault == "wrong-shape":
                    self._reply(200, b'{"result": {"unexpected": [1, 2]}}')
                    return
                if self.headers.get("Authorization") != f"Bearer {bridge.token}":
                    self._reply(401, b'{"error":"Unauthorized"}')
                    return
                b64 = self.headers.get("Upstash-Encoding") == "base64"
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._reply(400, b'{"error":"ERR failed to parse command"}')
                    return
                if self.path.rstrip("/") in ("/pipeline", "/multi-exec"):
                    out = [bridge.run(cmd, b64) for cmd in body]
                    self._reply(200, json.dumps(out).encode())
                    return
                result = bridge.run(body, b64)
                self._reply(400 if "error" in result else 200, json.dumps(result).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def run(self, command: Any, base64_: bool) -> dict[str, Any]:
        if not isinstance(command, list) or not command:
            return {"error": "ERR command must be a non-empty array"}
        try:
            return {"result": _encode(self.redis.execute_command(*command), base64_)}
        except redis.ResponseError as exc:
            return {"error": str(exc)}

    @property
    def env(self) -> dict[str, str]:
        return {"BARLAKE_UPSTASH_URL": self.url, "BARLAKE_UPSTASH_TOKEN": self.token}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.redis.close()
