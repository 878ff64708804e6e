"""The analytics routes: /v1/indicators/{symbol}, /v1/analytics/{symbol}, /v1/analytics.

Imported on the first analytics request (app.py registers the routes lazily), and TA-Lib on
the first indicator computed: the api function's cold import does not grow.

Validation is as strict as the bars endpoint's (params.py): an unknown, repeated or
out-of-range parameter is a 400 naming it; an indicator parameter is accepted only by the
indicator that takes it (`?name=sma&fastperiod=3` names fastperiod). Bodies are cached under
the daily generations they were built from (the symbol's, and the benchmark's or the other
symbols'), so they are fresh after every write, and carry a strong ETag derived from them.
"""

from __future__ import annotations

import hashlib
import math
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from barlake.api import params as p
from barlake.api.params import ApiError
from barlake.core import indicators as ind
from barlake.services.analytics import (
    ANALYTICS_VERSION,
    MAX_SYMBOLS,
    MAX_WINDOW,
    Analytics,
    IndicatorQuery,
    NotFoundError,
    StatsQuery,
    columns_of,
    stats_csv,
)
from barlake.services.generations import value_key

if TYPE_CHECKING:
    from barlake.api.app import ApiApp, Environ, Reply

FORMATS = ("json", "csv")
VALUE_TTL_SECONDS = 86_400
INDICATOR_PARAMS = frozenset(q.name for i in ind.INDICATORS.values() for q in i.params)
INDICATORS_BASE = frozenset({"name", "names", "interval", "adjust", "start", "end", "limit"})
INDICATORS_QUERY = INDICATORS_BASE | {"format"} | INDICATOR_PARAMS
ANALYTICS_QUERY = frozenset({"benchmark", "start", "end", "risk_free", "window", "format"})
ANALYTICS_MANY_QUERY = ANALYTICS_QUERY | {"symbols"}
RISK_FREE_REGEX = r"^-?0(\.[0-9]{1,12})?$"  # an annual rate in (-1, 1), as a decimal
MAX_RISK_FREE = 1.0  # 100 % a year
NAMES_REGEX = r"^[a-z]{2,7}(:[0-9]{1,6})?(,[a-z]{2,7}(:[0-9]{1,6})?){0,15}$"
_RISK_FREE = re.compile(RISK_FREE_REGEX)


@dataclass(frozen=True)
class _Body:
    data: bytes
    tier: str


def _analytics(app: ApiApp) -> Analytics:
    found = getattr(app, "_analytics", None)
    if found is None:
        found = Analytics(app.reads.raw, app.reads.derived)
        app._analytics = found  # type: ignore[attr-defined]
    return found


def _indicator_error(exc: ind.IndicatorError) -> ApiError:
    return p.bad(exc.parameter[:40], str(exc))


def indicator_query(params: dict[str, str]) -> IndicatorQuery:
    given = {k: v for k, v in params.items() if k in INDICATOR_PARAMS}
    try:
        if "name" in params and "names" in params:
            raise p.bad("names", "give name (one indicator) or names (several), not both")
        if "names" in params:
            if given:
                first = sorted(given)[0]
                raise p.bad(first, f"{first} goes with name=…; names takes name:period items")
            requests = ind.parse_names(params["names"])
        elif "name" in params:
            requests = [ind.request(params["name"], given)]
        else:
            raise p.bad("name", "name is required (e.g. name=rsi&timeperiod=14), or names")
    except ind.IndicatorError as exc:
        raise _indicator_error(exc) from exc
    q = IndicatorQuery(
        requests=tuple(requests),
        interval=p.choice(params, "interval", p.INTERVALS, "1d"),
        adjust=p.choice(params, "adjust", p.ADJUSTMENTS, "split"),
        start=p.day(params, "start"),
        end=p.day(params, "end"),
        limit=p.integer(params, "limit", 1, p.MAX_LIMIT),
        format=p.choice(params, "format", FORMATS, "json"),
    )
    if q.start and q.end and q.start > q.end:
        raise p.bad("start", f"start {q.start} is after end {q.end}")
    return q


def _risk_free(params: dict[str, str]) -> float:
    raw = params.get("risk_free")
    if raw is None:
        return 0.0
    if _RISK_FREE.match(raw):
        value = float(raw)
        if math.isfinite(value) and -MAX_RISK_FREE < value < MAX_RISK_FREE:
            return value
    raise p.bad(
        "risk_free",
        f"risk_free is an annual rate as a decimal above -1 and below 1 (0.05 = 5 %), "
        f"got {raw[:40]!r}",
    )


def stats_query(
    params: dict[str, str], symbols: Sequence[str], default_benchmark: str
) -> StatsQuery:
    benchmark = (
        p.symbol(params["benchmark"], "benchmark") if "benchmark" in params else default_benchmark
    )
    q = StatsQuery(
        symbols=tuple(symbols),
        benchmark=benchmark,
        start=p.day(params, "start"),
        end=p.day(params, "end"),
        risk_free=_risk_free(params),
        window=p.integer(params, "window", 2, MAX_WINDOW),
        format=p.choice(params, "format", FORMATS, "json"),
    )
    if q.start and q.end and q.start > q.end:
        raise p.bad("start", f"start {q.start} is after end {q.end}")
    return q


# --------------------------------------------------------------------------- routes


def indicators(app: ApiApp, environ: Environ, raw_symbol: str) -> Reply:
    symbol = p.symbol(raw_symbol)
    q = indicator_query(p.query(environ.get("QUERY_STRING", ""), INDICATORS_QUERY))
    (generation,) = app.reads.bars_generations([symbol])
    if generation is None:
        raise ApiError(404, "not_found", f"no bars for {symbol}")
    variant = q.variant()
    etag = f'"{generation}-i{zlib.crc32(variant.encode()):08x}"'

    def build() -> tuple[bytes, bool]:
        table, built_from = _analytics(app).indicators(symbol, q)
        if q.format == "csv":
            from barlake.api.render import bars_csv

            return bars_csv(table), built_from == generation
        return _indicators_json(symbol, q, built_from, table), built_from == generation

    return _answer(app, environ, symbol, generation, variant, etag, build, q.format, symbol)


def _indicators_json(symbol: str, q: IndicatorQuery, generation: int, table: Any) -> bytes:
    import json

    from barlake.api.render import rows

    head = {
        "symbol": symbol,
        "interval": q.interval,
        "adjust": q.adjust,
        "generation": generation,
        "indicators": [
            {"name": r.name, "params": dict(r.params), "columns": cols}
            for r, cols in zip(q.requests, columns_of(q.requests), strict=True)
        ],
        "count": table.num_rows,
    }
    text = json.dumps(head, separators=(",", ":"))
    body = json.dumps(rows(table), separators=(",", ":"), allow_nan=False)
    return f'{text[:-1]},"rows":{body}}}'.encode()


def analytics_one(app: ApiApp, environ: Environ, raw_symbol: str) -> Reply:
    symbol = p.symbol(raw_symbol)
    params = p.query(environ.get("QUERY_STRING", ""), ANALYTICS_QUERY)
    q = stats_query(params, [symbol], app.benchmark)
    return _statistics(app, environ, q, "benchmark" in params)


def analytics_many(app: ApiApp, environ: Environ) -> Reply:
    params = p.query(environ.get("QUERY_STRING", ""), ANALYTICS_MANY_QUERY)
    symbols = p.symbol_list(params)
    if len(symbols) > MAX_SYMBOLS:
        raise p.bad("symbols", f"at most {MAX_SYMBOLS} symbols per request, got {len(symbols)}")
    q = stats_query(params, symbols, app.benchmark)
    return _statistics(app, environ, q, "benchmark" in params)


def _statistics(app: ApiApp, environ: Environ, q: StatsQuery, explicit: bool) -> Reply:
    """`explicit`: the benchmark was asked for (else it is the default, left out if absent)."""
    names = [*q.symbols, *([q.benchmark] if q.benchmark else [])]
    generations = app.reads.bars_generations(names)
    missing = [s for s, g in zip(q.symbols, generations, strict=False) if g is None]
    if missing:
        raise ApiError(404, "not_found", f"no bars for {', '.join(missing)}")
    if q.benchmark and generations[-1] is None:
        if explicit:
            raise ApiError(404, "not_found", f"no bars for the benchmark {q.benchmark}")
        q = StatsQuery(q.symbols, None, q.start, q.end, q.risk_free, q.window, q.format)
        generations = generations[:-1]
    gens = [int(g) for g in generations if g is not None]
    variant = q.variant(gens)
    digest = hashlib.sha1(variant.encode(), usedforsecurity=False).hexdigest()[:20]
    etag = f'"a-{digest}"'

    def build() -> tuple[bytes, bool]:
        import json

        answer, used = _analytics(app).statistics(q)
        if q.format == "csv":
            return stats_csv(answer), used == gens
        answer = {"symbols": list(q.symbols), "generations": used, **answer}
        return json.dumps(answer, separators=(",", ":"), allow_nan=False).encode(), used == gens

    filename = q.symbols[0] if len(q.symbols) == 1 else "analytics"
    return _answer(app, environ, q.symbols[0], gens[0], variant, etag, build, q.format, filename)


def _answer(
    app: ApiApp,
    environ: Environ,
    symbol: str,
    generation: int,
    variant: str,
    etag: str,
    build: Callable[[], tuple[bytes, bool]],
    fmt: str,
    filename: str,
) -> Reply:
    from barlake.api.app import _matches
    from barlake.core.layout import daily_name

    if _matches(environ.get("HTTP_IF_NONE_MATCH"), etag):
        return app._not_modified(etag)
    digest = hashlib.sha1(variant.encode(), usedforsecurity=False).hexdigest()[:24]
    key = value_key(
        app.reads.raw.bucket, daily_name(symbol), generation, f"an{ANALYTICS_VERSION}:{digest}"
    )
    data, tier = app.reads._get(key)
    if data is None:
        try:
            data, current = build()
        except NotFoundError as exc:  # deleted between the generation check and the read
            raise ApiError(404, "not_found", str(exc)) from exc
        if current:  # else written meanwhile: served, not cached under the older generation
            app.reads.cache.set(key, data, VALUE_TTL_SECONDS)
    served = {"l1": "hit-l1", "shared": "hit"}.get(tier, "miss")
    app._serve(served)
    return app._data(data, fmt, etag, served, filename)
