"""A real HTTP proxy that misbehaves on cue, to test retries against a real server.

It forwards every request to the upstream server (fake-gcs-server in the tests) unless a rule
matches: then it answers an error status instead, answers the error *after* forwarding (the
request was applied but its answer is lost: the ambiguous failure), or drops the connection.
Nothing in the code under test is mocked: the client speaks HTTP to this proxy.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


@dataclass
class Rule:
    method: str
    path_contains: str
    status: int = 503  # 0 = drop the connection without an answer
    times: int = 1  # how many matching requests it hits; -1 = every one
    after_forward: bool = False  # forward first, then answer the error anyway
    on_hit: Callable[[], None] | None = None  # runs before the error is answered
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (
            method == self.method
            and self.path_contains in path
            and (self.times < 0 or self.hits < self.times)
        )


@dataclass
class FlakyProxy:
    upstream: str  # "127.0.0.1:PORT"
    rules: list[Rule] = field(default_factory=list)
    log: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, status sent
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail(self, method: str, path_contains: str, **kwargs: object) -> Rule:
        rule = Rule(method, path_contains, **kwargs)  # type: ignore[arg-type]
        self.rules.append(rule)
        return rule

    def count(self, method: str, path_contains: str) -> int:
        return sum(1 for m, p, _ in self.log if m == method and path_contains in p)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        with self._lock:
            rule = next((r for r in self.rules if r.matches(h.command, h.path)), None)
            if rule is not None:
                rule.hits += 1
        if rule is None or rule.after_forward:
            status, headers, answer = self._forward(h, body)
        if rule is not None:
            if rule.on_hit is not None:
                rule.on_hit()
            self.log.append((h.command, h.path, rule.status))
            if rule.status == 0:
                h.close_connection = True
                return  # no answer at all: the client sees the connection drop
            error = {"error": {"code": rule.status, "message": "injected by FlakyProxy"}}
            status, headers, answer = (
                rule.status,
                [("Content-Type", "application/json")],
                (json.dumps(error).encode()),
            )
        else:
            self.log.append((h.command, h.path, status))
        h.send_response(status)
        for key, value in headers:
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(answer)))
        h.end_headers()
        h.wfile.write(answer)

    def _forward(
        self, h: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.upstream, timeout=60)
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in _HOP_BY_HOP}
            conn.request(h.command, h.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            answer = resp.read()
            kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP]
            return resp.status, kept, answer
        finally:
            conn.close()
