"""The API as one WSGI application: routing, API keys, validation, ETag/304, JSON errors.

`ApiApp.handle(environ)` is the whole API; `ApiApp` is also a WSGI callable, and the
functions-framework entry point (function.py) passes it the request's environ. No framework
routing: eleven routes are a few string comparisons, and the hot path (a cached body) stays a
few microseconds of Python beside the cache round trip.

Rules every route follows:
- every input is validated (params.py) and a bad one is a 400 JSON error naming it;
- a wrong method is a 405 with `Allow`; OPTIONS answers 204 with `Allow`; HEAD is GET without
  the body;
- with BARLAKE_API_KEYS set, data and admin routes need `X-API-Key` (compared in constant time
  against each key's SHA-256); `Authorization` stays free for Cloud Run's IAM token; with no
  keys, admin routes (DELETE /v1/cache) are disabled (403 admin_disabled);
- data responses carry a strong ETag (the generation they were built from) and
  `Cache-Control: private, no-cache` (keep it, revalidate it: If-None-Match answers 304);
- an unexpected exception is logged and answered 500 with a JSON body: that is a bug, and the
  fuzz test asserts it never happens.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import json
import logging
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from barlake.api import params as p
from barlake.api.params import ApiError

if TYPE_CHECKING:
    from barlake.api.reads import CachedReads
    from barlake.config import App, Settings

log = logging.getLogger("barlake.api")

DATA_CACHE_CONTROL = "private, no-cache"
PARSED_REQUESTS = 65_536  # validated bars requests remembered (then forgotten all at once)
_TIERS = {"l1": "hit-l1", "shared": "hit"}  # reads.Body.tier → X-Cache
GET_METHODS = ("GET", "HEAD", "OPTIONS")
Environ = dict[str, Any]


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def _json_reply(status: int, payload: Any, cache_control: str = "no-store") -> Reply:
    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    return Reply(
        status, [("Content-Type", "application/json"), ("Cache-Control", cache_control)], body
    )


def error_reply(exc: ApiError) -> Reply:
    error: dict[str, Any] = {"status": exc.status, "code": exc.code, "message": exc.message}
    if exc.parameter is not None:
        error["parameter"] = exc.parameter
    return _json_reply(exc.status, {"error": error})


def parse_keys(raw: str) -> list[str]:
    return [k.strip() for k in raw.split(",") if k.strip()]


def _matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2): W/ is ignored."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def _content_etag(body: bytes) -> str:
    return f'"c-{hashlib.sha1(body, usedforsecurity=False).hexdigest()[:20]}"'


class ApiApp:
    def __init__(
        self,
        reads: CachedReads,
        api_keys: Sequence[str] = (),
        benchmark: str = "^GSPC",
        universes: Any = None,
        clock: Callable[[], Any] | None = None,
        tiers: Any = None,
    ) -> None:
        from barlake.api import openapi

        self.reads = reads
        self.benchmark = benchmark  # of /v1/analytics (BARLAKE_BENCHMARK_SYMBOL)
        self._key_digests = [hashlib.sha256(k.encode()).digest() for k in api_keys]
        self._openapi = json.dumps(openapi.build(bool(api_keys)), indent=1).encode()
        self._parsed: dict[tuple[str, str], tuple[str, p.BarsQuery, str]] = {}
        self.served: Counter[str] = Counter()  # bodies by origin: hit-l1, hit, miss
        self.responses: Counter[str] = Counter()  # by status class: 2xx, 3xx, 4xx, 5xx
        self._count_lock = threading.Lock()
        self._exact: dict[str, tuple[tuple[str, ...], bool, Callable[[Environ], Reply]]] = {
            "/": (GET_METHODS, False, self._index),
            "/openapi.json": (GET_METHODS, False, self._openapi_doc),
            "/v1/health": (GET_METHODS, False, self._health),
            "/v1/symbols": (GET_METHODS, True, self._symbols),
            "/v1/bars": (GET_METHODS, True, self._batch),
            "/v1/runs/latest": (GET_METHODS, True, lambda env: self._run(env, None)),
            "/v1/analytics": (
                GET_METHODS,
                True,
                lambda env: _analytics().analytics_many(self, env),
            ),
        }
        self._prefixed: list[tuple[str, tuple[str, ...], Callable[[Environ, str], Reply]]] = [
            ("/v1/bars/", GET_METHODS, self._bars),
            ("/v1/profiles/", GET_METHODS, self._profile),
            ("/v1/provenance/", GET_METHODS, self._provenance),
            ("/v1/runs/", GET_METHODS, self._run),
            ("/v1/history/", GET_METHODS, self._history),
            ("/v1/cache/", ("DELETE", "OPTIONS"), self._forget),
            ("/v1/indicators/", GET_METHODS, lambda e, s: _analytics().indicators(self, e, s)),
            ("/v1/analytics/", GET_METHODS, lambda e, s: _analytics().analytics_one(self, e, s)),
        ]
        if universes is not None:  # /v1/universes[/{name}] (barlake.api.universes)
            from barlake.api import universes as universe_routes

            universe_routes.register(self, universes)
        from barlake.api import market  # /v1/market/status

        market.register(self, clock or _utc_now)
        if tiers is not None:  # /v1/tiers/{symbol} (barlake.api.tiers)
            from barlake.api import tiers as tier_routes

            tier_routes.register(self, tiers)

    # ------------------------------------------------------------------ WSGI

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        reply = self.handle(environ)
        headers = [*reply.headers, ("Content-Length", str(len(reply.body)))]
        start_response(f"{reply.status} {HTTPStatus(reply.status).phrase}", headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [reply.body]

    def handle(self, environ: Environ) -> Reply:
        started = time.perf_counter()
        try:
            reply = self._route(environ)
        except _Options as exc:
            reply = Reply(204, [("Allow", ", ".join(exc.allowed))])
        except _MethodNotAllowed as exc:
            reply = error_reply(exc)
            reply.headers.append(("Allow", ", ".join(exc.allowed)))
        except ApiError as exc:
            reply = error_reply(exc)
        except LookupError as exc:  # reads.NotFoundError
            reply = error_reply(ApiError(404, "not_found", str(exc)))
        except Exception:
            log.exception(
                "unexpected error on %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
            )
            reply = error_reply(ApiError(500, "internal", "internal error; see the server logs"))
        with self._count_lock:
            self.responses[f"{reply.status // 100}xx"] += 1
        elapsed_ms = (time.perf_counter() - started) * 1000
        reply.headers.append(("Server-Timing", f"app;dur={elapsed_ms:.3f}"))
        reply.headers.append(("X-Content-Type-Options", "nosniff"))
        return reply

    def _serve(self, tier: str) -> None:
        with self._count_lock:
            self.served[tier] += 1

    def _route(self, environ: Environ) -> Reply:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/dashboard" or path.startswith("/dashboard/"):  # pages: open; data: keyed
            self._check(environ, method, GET_METHODS, False)
            return self._dashboard(environ, path[len("/dashboard/") :])
        exact = self._exact.get(path)
        if exact is not None:
            methods, keyed, view = exact
            self._check(environ, method, methods, keyed)
            return view(environ)
        for prefix, methods, handler in self._prefixed:
            if path.startswith(prefix):
                rest = path[len(prefix) :]
                if not rest or "/" in rest:
                    break
                self._check(environ, method, methods, True)
                return handler(environ, rest)
        raise ApiError(404, "no_route", f"no such endpoint: {path[:100]} (see /openapi.json)")

    def _check(self, environ: Environ, method: str, methods: tuple[str, ...], keyed: bool) -> None:
        if method == "OPTIONS":
            raise _Options(methods)
        if method not in methods:
            raise _MethodNotAllowed(method, methods)
        if keyed and self._key_digests and not self._authorized(environ.get("HTTP_X_API_KEY")):
            raise ApiError(401, "unauthorized", "missing or unknown X-API-Key header")

    def _authorized(self, supplied: str | None) -> bool:
        if supplied is None:
            return False
        digest = hashlib.sha256(supplied.encode("latin-1", "replace")).digest()
        ok = False
        for key in self._key_digests:  # every key, always: no early exit to time
            ok |= hmac.compare_digest(digest, key)
        return ok

    # ------------------------------------------------------------------ meta

    def _index(self, environ: Environ) -> Reply:
        return _json_reply(
            200,
            {
                "name": "barlake",
                "openapi": "/openapi.json",
                "endpoints": [
                    "/v1/bars/{symbol}",
                    "/v1/bars?symbols=A,B",
                    "/v1/symbols",
                    "/v1/profiles/{symbol}",
                    "/v1/provenance/{symbol}",
                    "/v1/runs/latest",
                    "/v1/runs/{run_id}",
                    "/v1/indicators/{symbol}?name=rsi&timeperiod=14",
                    "/v1/analytics/{symbol}",
                    "/v1/analytics?symbols=A,B",
                    "/v1/history/{symbol}",
                    "/v1/health",
                ],
                "dashboard": "/dashboard",
            },
            "public, max-age=300",
        )

    def _openapi_doc(self, environ: Environ) -> Reply:
        p.query(environ.get("QUERY_STRING", ""), frozenset())
        return Reply(
            200,
            [("Content-Type", "application/json"), ("Cache-Control", "public, max-age=300")],
            self._openapi,
        )

    def _health(self, environ: Environ) -> Reply:
        p.query(environ.get("QUERY_STRING", ""), frozenset())
        checks = self.reads.health()
        down = any(checks[k]["status"] != "ok" for k in ("storage", "state"))
        healthy = checks["cache"]["status"] == "ok" and checks["lake"]["status"] == "ok"
        status = "down" if down else ("ok" if healthy else "degraded")
        checks["cache"]["served"] = dict(self.served)
        checks["responses"] = dict(self.responses)  # this instance's, since it started
        from barlake.api.openapi import VERSION

        return _json_reply(503 if down else 200, {"status": status, "version": VERSION, **checks})

    # ------------------------------------------------------------------ bars

    def _bars(self, environ: Environ, raw_symbol: str) -> Reply:
        query = environ.get("QUERY_STRING", "")
        parsed = self._parsed.get((raw_symbol, query))
        if parsed is None:  # validated once per distinct request line, then remembered
            symbol = p.symbol(raw_symbol)
            q = p.bars_query(p.query(query, p.BARS_PARAMS))
            parsed = (symbol, q, self._bars_etag_suffix(q))
            if len(self._parsed) >= PARSED_REQUESTS:
                self._parsed.clear()
            self._parsed[(raw_symbol, query)] = parsed
        symbol, q, suffix = parsed
        (generation,) = self.reads.bars_generations([symbol], q.as_of)
        if generation is None:
            raise ApiError(404, "not_found", f"no bars for {symbol}")
        etag = f'"{generation}{suffix}'
        if _matches(environ.get("HTTP_IF_NONE_MATCH"), etag):
            return self._not_modified(etag)
        body = self.reads.bars(symbol, q, generation)
        if body.generation != generation:
            etag = f'"{body.generation}{suffix}'
        tier = _TIERS.get(body.tier, "miss")
        self._serve(tier)
        return self._data(body.data, q.format, etag, tier, f"{symbol}_{q.interval}")

    @staticmethod
    def _bars_etag_suffix(q: p.BarsQuery) -> str:
        """The ETag is the generation and this: a digest of the representation asked for."""
        from barlake.api.render import RENDER_VERSION

        variant = zlib.crc32(f"{RENDER_VERSION}:{q.variant()}".encode())
        return f'-{variant:08x}"'

    def _batch(self, environ: Environ) -> Reply:
        from barlake.api import render

        params = p.query(environ.get("QUERY_STRING", ""), p.BATCH_PARAMS)
        symbols = p.symbol_list(params)
        q = p.bars_query(params)
        generations = self.reads.bars_generations(symbols, q.as_of)
        found = [(s, g) for s, g in zip(symbols, generations, strict=True) if g is not None]
        missing = [s for s, g in zip(symbols, generations, strict=True) if g is None]
        if not found:
            raise ApiError(404, "not_found", f"no bars for {', '.join(symbols)}")
        etag = self._batch_etag(found, q)
        if _matches(environ.get("HTTP_IF_NONE_MATCH"), etag):
            return self._not_modified(etag)
        answers = self.reads.bars_many([s for s, _ in found], q, [g for _, g in found])
        failed = {s: a for (s, _), a in zip(found, answers, strict=True) if isinstance(a, ApiError)}
        bodies = [a for a in answers if not isinstance(a, ApiError)]
        if not bodies:  # every symbol asked for is corrupt
            raise next(iter(failed.values()))
        built = [
            (s, b.generation) for (s, _), b in zip(found, answers, strict=True) if s not in failed
        ]
        if built != found:
            etag = self._batch_etag(built, q)
        misses = sum(b.tier == "miss" for b in bodies)
        tier = "hit" if misses == 0 else ("miss" if misses == len(bodies) else "partial")
        self._serve("hit" if misses == 0 else "miss")
        data = [b.data for b in bodies]
        if q.format == "json":
            errors = [{"symbol": s, "status": 404, "message": f"no bars for {s}"} for s in missing]
            errors += [
                {"symbol": s, "status": e.status, "code": e.code, "message": e.message}
                for s, e in failed.items()
            ]
            body = render.batch_json(q.interval, q.adjust, data, errors)
        elif q.format == "csv":
            body = render.batch_csv(data)
        else:
            body = render.batch_parquet(data)
        reply = self._data(body, q.format, etag, tier, f"bars_{q.interval}")
        if missing:
            reply.headers.append(("Barlake-Missing-Symbols", ",".join(missing)))
        if failed:
            reply.headers.append(("Barlake-Corrupt-Symbols", ",".join(failed)))
        return reply

    def _batch_etag(self, pairs: Sequence[tuple[str, int]], q: p.BarsQuery) -> str:
        from barlake.api.render import RENDER_VERSION

        text = "|".join(f"{s}@{g}" for s, g in pairs) + f"|{RENDER_VERSION}:{q.variant()}"
        return f'"b-{hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:20]}"'

    @staticmethod
    def _not_modified(etag: str) -> Reply:
        return Reply(304, [("ETag", etag), ("Cache-Control", DATA_CACHE_CONTROL)])

    @staticmethod
    def _data(body: bytes, fmt: str, etag: str, tier: str, filename: str) -> Reply:
        from barlake.api.render import MEDIA_TYPES

        headers = [
            ("Content-Type", MEDIA_TYPES[fmt]),
            ("ETag", etag),
            ("Cache-Control", DATA_CACHE_CONTROL),
            ("X-Cache", tier),
        ]
        if fmt != "json":
            ext = "csv" if fmt == "csv" else "parquet"
            headers.append(("Content-Disposition", f'inline; filename="{filename}.{ext}"'))
        return Reply(200, headers, body)

    # ------------------------------------------------------------------ lake

    def _profile(self, environ: Environ, raw_symbol: str) -> Reply:
        symbol = p.symbol(raw_symbol)
        p.query(environ.get("QUERY_STRING", ""), frozenset())
        (generation,) = self.reads.generations.current(self.reads.derived, [_profile_name(symbol)])
        if generation is not None:
            etag = f'"{generation}-p"'
            if _matches(environ.get("HTTP_IF_NONE_MATCH"), etag):
                return self._not_modified(etag)
        body = self.reads.profile(symbol)
        tier = _TIERS.get(body.tier, "miss")
        self._serve(tier)
        return self._data(body.data, "json", f'"{body.generation}-p"', tier, symbol)

    def _provenance(self, environ: Environ, raw_symbol: str) -> Reply:
        symbol = p.symbol(raw_symbol)
        p.query(environ.get("QUERY_STRING", ""), frozenset())
        (generation,) = self.reads.bars_generations([symbol])
        if generation is None:
            raise ApiError(404, "not_found", f"no bars for {symbol}")
        etag = f'"{generation}-prov"'
        if _matches(environ.get("HTTP_IF_NONE_MATCH"), etag):
            return self._not_modified(etag)
        body = self.reads.provenance(symbol, generation)
        tier = _TIERS.get(body.tier, "miss")
        self._serve(tier)
        return self._data(body.data, "json", f'"{body.generation}-prov"', tier, symbol)

    def _symbols(self, environ: Environ) -> Reply:
        params = p.query(environ.get("QUERY_STRING", ""), p.SYMBOLS_PARAMS)
        limit = p.integer(params, "limit", 1, p.MAX_PAGE, p.DEFAULT_PAGE) or p.DEFAULT_PAGE
        after = p.symbol(params["after"], "after") if "after" in params else None
        inventory, tier = self.reads.inventory()
        entries = inventory["symbols"]
        start = bisect.bisect_right([e["symbol"] for e in entries], after) if after else 0
        page = entries[start : start + limit]
        more = start + limit < len(entries)
        payload = {
            "totals": inventory["totals"],
            "symbols": page,
            "next_after": page[-1]["symbol"] if more and page else None,
        }
        body = json.dumps(payload, separators=(",", ":"), default=str).encode()
        return self._revalidated(environ, body, _TIERS.get(tier, "miss"))

    def _run(self, environ: Environ, raw_run_id: str | None) -> Reply:
        p.query(environ.get("QUERY_STRING", ""), frozenset())
        run = self.reads.run(p.run_id(raw_run_id) if raw_run_id is not None else None)
        body = json.dumps(run, separators=(",", ":"), default=str).encode()
        return self._revalidated(environ, body, "miss")

    def _revalidated(self, environ: Environ, body: bytes, tier: str) -> Reply:
        """A body with no generation of its own: its ETag is its content's hash."""
        etag = _content_etag(body)
        if _matches(environ.get("HTTP_IF_NONE_MATCH"), etag):
            return self._not_modified(etag)
        return self._data(body, "json", etag, tier, "")

    def _history(self, environ: Environ, raw_symbol: str) -> Reply:
        from barlake.api.dashboard import history

        symbol = p.symbol(raw_symbol)
        p.query(environ.get("QUERY_STRING", ""), frozenset())
        return self._revalidated(environ, history(self.reads.state, symbol), "miss")

    def _dashboard(self, environ: Environ, rest: str) -> Reply:
        from barlake.api import dashboard

        p.query(environ.get("QUERY_STRING", ""), frozenset())
        try:
            body, media, etag = dashboard.ASSETS_CACHE.get(rest)
        except dashboard.MissingAsset as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        headers = [("ETag", etag), ("Cache-Control", "public, max-age=300")]
        if _matches(environ.get("HTTP_IF_NONE_MATCH"), etag):
            return Reply(304, headers)
        headers += [("Content-Type", media), ("Content-Security-Policy", dashboard.CSP)]
        return Reply(200, headers, body)

    # ------------------------------------------------------------------ admin

    def _forget(self, environ: Environ, raw_symbol: str) -> Reply:
        if not self._key_digests:  # an admin action open to anyone who can reach the API: no
            raise ApiError(
                403,
                "admin_disabled",
                "admin endpoints need an API key; none is configured (BARLAKE_API_KEYS)",
            )
        symbol = p.symbol(raw_symbol)
        p.query(environ.get("QUERY_STRING", ""), frozenset())
        dropped = self.reads.forget(symbol)
        log.info("cache forgotten for %s: %d entries", symbol, dropped)
        return _json_reply(200, {"symbol": symbol, "dropped": dropped})


def _analytics() -> Any:
    """The analytics routes (barlake.api.analytics), imported on their first request."""
    from barlake.api import analytics

    return analytics


def _profile_name(symbol: str) -> str:
    from barlake.core.layout import profile_name

    return profile_name(symbol)


class _MethodNotAllowed(ApiError):
    def __init__(self, method: str, allowed: tuple[str, ...]) -> None:
        super().__init__(405, "method_not_allowed", f"{method[:20]} is not allowed here")
        self.allowed = allowed


class _Options(ApiError):
    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__(204, "options", "")
        self.allowed = allowed


def build_api(settings: Settings | None = None, app: App | None = None) -> ApiApp:
    """The API over the app the settings wire (the environment's, by default)."""
    from barlake.api.reads import CachedReads
    from barlake.config import Settings, build_app

    app = app or build_app(settings or Settings.from_env())
    reads = CachedReads(app.raw, app.derived, app.state, app.cache)
    return ApiApp(
        reads,
        parse_keys(app.settings.api_keys),
        app.settings.benchmark_symbol,
        app.universes,
        app.clock,
        app.tiers,
    )


def _utc_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
