"""A real HTTP server (stdlib http.server in a thread) answering recorded provider bodies.

The provider adapters are tested through their real HTTP client (requests) against it: each
route maps a path to an answer (status, content type, body bytes, an optional delay), or to a
function of the query that returns one, and every request is logged with its query and headers
so tests can check the request shape (auth header, dates, no key in a message).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

FIXTURES = Path(__file__).parent / "fixtures" / "providers"


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0


def json_answer(body: Any, status: int = 200) -> Answer:
    return Answer(status, json.dumps(body).encode())


def file_answer(relative: str, status: int = 200) -> Answer:
    return Answer(status, (FIXTURES / relative).read_bytes())


def html_answer(status: int = 200) -> Answer:
    page = (
        b"<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
        b"<body>checking your browser</body></html>"
    )
    return Answer(status, page, "text/html; charset=utf-8")


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class ProviderServer:
    url: str = ""
    routes: dict[str, Answer | Callable[[dict[str, str]], Answer]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def route(self, path: str, answer: Answer | Callable[[dict[str, str]], Answer]) -> None:
        self.routes[path] = answer

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]


@contextmanager
def serve() -> Iterator[ProviderServer]:
    state = ProviderServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query))
            state.seen.append(Seen(parts.path, query, dict(self.headers.items())))
            answer = state.routes.get(parts.path)
            if callable(answer):
                answer = answer(query)
            if answer is None:
                answer = json_answer({"detail": "Not found."}, 404)
            if answer.delay:
                time.sleep(answer.delay)
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out first
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
