"""The OpenAPI 3.1 document served at /openapi.json: every operation, parameter and response.

Parameters carry the same rules params.py enforces (patterns, enums, ranges), so generated
requests that break the schema are the ones the API refuses with 400; the fuzz test
(tests/test_api_fuzz.py) holds the two together. With API keys configured, every operation
but the index, the health check and this document requires the X-API-Key header.
"""

from __future__ import annotations

from typing import Any

from barlake.api import params as p

VERSION = "1.0.0"


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _query(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


_NUMBER = {"type": ["number", "null"]}
_INTEGER = {"type": ["integer", "null"]}
_DATE = {"type": "string", "format": "date", "pattern": p.DATE_REGEX}

_BAR = {
    "type": "object",
    "required": ["date", "open", "high", "low", "close", "adj_close", "volume"],
    "properties": {
        "date": _DATE,
        "open": _NUMBER,
        "high": _NUMBER,
        "low": _NUMBER,
        "close": _NUMBER,
        "adj_close": _NUMBER,
        "volume": _INTEGER,
        "sessions": {"type": "integer", "description": "Sessions in the week or month."},
        "provisional": {
            "type": "boolean",
            "description": "The period is not over: a later session may still join it.",
        },
    },
    "additionalProperties": False,
}

_BARS = {
    "type": "object",
    "required": ["symbol", "interval", "adjust", "generation", "count", "bars"],
    "properties": {
        "symbol": {"type": "string"},
        "interval": {"enum": list(p.INTERVALS)},
        "adjust": {"enum": list(p.ADJUSTMENTS)},
        "generation": {
            "type": "integer",
            "description": "Generation of the daily object the bars come from (the ETag).",
        },
        "count": {"type": "integer", "minimum": 0},
        "bars": {"type": "array", "items": _ref("schemas", "Bar")},
    },
    "additionalProperties": False,
}

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "code", "message"],
            "properties": {
                "status": {"type": "integer"},
                "code": {"type": "string"},
                "message": {"type": "string"},
                "parameter": {"type": "string"},
            },
        }
    },
}

_INVENTORY_ENTRY = {
    "type": "object",
    "required": ["symbol", "last_date", "staleness_sessions", "stale", "rows"],
    "properties": {
        "symbol": {"type": "string"},
        "exchange": {"type": ["string", "null"]},
        "first_date": {"type": ["string", "null"]},
        "last_date": {"type": ["string", "null"]},
        "rows": {"type": "integer"},
        "staleness_sessions": {
            "type": ["integer", "null"],
            "description": "Sessions of the symbol's exchange since its last stored bar.",
        },
        "stale": {"type": "boolean", "description": "More than one session behind."},
        "gap_count": {"type": "integer"},
        "quarantined": {"type": "integer"},
        "generation": {"type": ["integer", "null"]},
        "as_of": {"type": ["string", "null"], "description": "Day the profile was judged on."},
        "verified_at": {
            "type": ["string", "null"],
            "description": "When the deep audit last compared the whole history bar for bar.",
        },
        "pending_revisions": {
            "type": "integer",
            "description": "Unexplained revisions waiting for a confirming fetch.",
        },
        "unadjusted_splits": {
            "type": "integer",
            "description": "Split actions the stored prices do not reflect yet.",
        },
        "delisted": {
            "type": "boolean",
            "description": "Delisted after repeated not-found answers: out of the daily runs, "
            "data kept (`barlake delisted`).",
        },
    },
}

_SYMBOLS = {
    "type": "object",
    "required": ["totals", "symbols", "next_after"],
    "properties": {
        "totals": {
            "type": "object",
            "description": "Lake-wide totals (symbols, rows, bytes, stale, with_gaps, …).",
        },
        "symbols": {"type": "array", "items": _ref("schemas", "InventoryEntry")},
        "next_after": {
            "type": ["string", "null"],
            "description": "Pass as `after` for the next page; null on the last page.",
        },
    },
}

_RUN = {
    "type": "object",
    "required": ["run_id", "kind", "complete", "batches_expected", "batches_done", "errors"],
    "properties": {
        "run_id": {"type": "string"},
        "kind": {"type": "string"},
        "created_at": {"type": ["string", "null"]},
        "complete": {"type": "boolean"},
        "batches_expected": {"type": "integer"},
        "batches_done": {"type": "integer"},
        "symbols": {"type": "integer"},
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "rows_written": {"type": "integer"},
        "rows_quarantined": {"type": "integer"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["symbol", "kind", "message", "retryable"],
                "properties": {
                    "symbol": {"type": "string"},
                    "kind": {"type": "string"},
                    "message": {"type": "string"},
                    "retryable": {"type": "boolean"},
                },
            },
        },
    },
}

_CHECK = {
    "type": "object",
    "required": ["status", "latency_ms"],
    "properties": {
        "status": {"enum": ["ok", "down"]},
        "latency_ms": {"type": "number"},
        "error": {"type": ["string", "null"]},
    },
}

_HEALTH = {
    "type": "object",
    "required": ["status", "storage", "state", "cache"],
    "properties": {
        "status": {"enum": ["ok", "degraded", "down"]},
        "version": {"type": "string"},
        "storage": _ref("schemas", "Check"),
        "state": _ref("schemas", "Check"),
        "cache": {
            "type": "object",
            "required": ["backend", "status"],
            "description": "Backend, status, latency, breaker state, hit rate and counters.",
            "properties": {
                "backend": {"type": "string"},
                "status": {"enum": ["ok", "down"]},
                "latency_ms": {"type": "number"},
            },
        },
        "lake": {
            "type": "object",
            "description": "Daily objects that cannot be decoded (never served; `barlake "
            "repair SYMBOL` heals them) and profiles not yet rebuilt.",
            "properties": {
                "status": {"enum": ["ok", "corrupt", "unknown"]},
                "corrupt_objects": {"type": "object"},
                "profiles_pending": {"type": "integer"},
            },
        },
    },
}

_HEADERS = {
    "ETag": {
        "description": "Strong validator: the stored object's generation (and the format).",
        "schema": {"type": "string"},
        "required": True,
    },
    "Cache-Control": {"schema": {"type": "string"}, "required": True},
    "X-Cache": {
        "description": "Where the body came from: hit-l1 (in-process), hit (Redis/Upstash), "
        "miss (built from storage now).",
        "schema": {"type": "string"},
    },
}


def _ok(content: dict[str, Any], description: str, etag: bool = True) -> dict[str, Any]:
    headers = _HEADERS if etag else {"Cache-Control": _HEADERS["Cache-Control"]}
    return {"description": description, "headers": headers, "content": content}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


_BAR_CONTENT = {
    "application/json": {"schema": _ref("schemas", "Bars")},
    "text/csv": {"schema": {"type": "string"}},
    "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
}

_BATCH = {
    "type": "object",
    "required": ["interval", "adjust", "count", "results", "errors"],
    "properties": {
        "interval": {"enum": list(p.INTERVALS)},
        "adjust": {"enum": list(p.ADJUSTMENTS)},
        "count": {"type": "integer"},
        "results": {"type": "array", "items": _ref("schemas", "Bars")},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["symbol", "status", "message"],
                "properties": {
                    "symbol": {"type": "string"},
                    "status": {"type": "integer"},
                    "code": {"type": "string", "description": "corrupt_object (status 500)"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json(_ref("schemas", "Error"))}


def _not_modified() -> dict[str, Any]:
    return {
        "description": "Not modified: the If-None-Match ETag is current.",
        "headers": {"ETag": _HEADERS["ETag"], "Cache-Control": _HEADERS["Cache-Control"]},
    }


def _operation(
    summary: str,
    description: str,
    parameters: list[dict[str, Any]],
    responses: dict[str, Any],
    *,
    keyed: bool,
    tag: str,
    op_id: str,
) -> dict[str, Any]:
    if keyed:
        responses = {**responses, "401": _ref("responses", "Unauthorized")}
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "description": description,
        "tags": [tag],
        "parameters": parameters,
        "responses": responses,
    }
    if keyed:
        op["security"] = [{"apiKey": []}]
    return op


_NO_DOUBLE_DOT = {"pattern": r"\.\."}
SYMBOL_SCHEMA = {
    "type": "string",
    "pattern": p.SYMBOL_REGEX,
    "maxLength": p.SYMBOL_MAX_LENGTH,
    "not": _NO_DOUBLE_DOT,
}


def build(api_keys: bool) -> dict[str, Any]:
    """The document; `api_keys`: whether this deployment requires X-API-Key."""
    symbol = {
        "name": "symbol",
        "in": "path",
        "required": True,
        "description": "Yahoo symbol, case-insensitive: AAPL, BRK-B, ^GSPC (as %5EGSPC), 7203.T.",
        "schema": SYMBOL_SCHEMA,
    }
    bar_params = [
        _query("interval", {"enum": list(p.INTERVALS), "default": "1d"}, "Bar interval."),
        _query("start", _DATE, "First date (inclusive)."),
        _query("end", _DATE, "Last date (inclusive); not before start."),
        _query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": p.MAX_LIMIT},
            "Only the most recent N bars of the range.",
        ),
        _query(
            "adjust",
            {"enum": list(p.ADJUSTMENTS), "default": "split"},
            "split: as stored (split-adjusted, like Yahoo's close); total: splits and "
            "dividends (scaled by adj_close/close); none: splits undone (prices as traded).",
        ),
        _query("format", {"enum": list(p.FORMATS), "default": "json"}, "Body format."),
        _query(
            "as_of",
            {"type": "string", "format": "date-time"},
            "The bars exactly as the lake held them at this instant (RFC 3339 with a zone, "
            "e.g. 2025-08-20T00:00:00Z), from the raw bucket's kept object versions; the body "
            "and the ETag name the generation read. 404 when no version live then is kept.",
        ),
    ]
    common = {
        "304": _not_modified(),
        "400": _ref("responses", "BadRequest"),
        "404": _ref("responses", "NotFound"),
        "500": _ref("responses", "CorruptObject"),
    }
    paths: dict[str, Any] = {
        "/": {
            "get": _operation(
                "Index",
                "Links to the endpoints and this document.",
                [],
                {"200": _ok(_json({"type": "object"}), "Index.", etag=False)},
                keyed=False,
                tag="meta",
                op_id="index",
            )
        },
        "/openapi.json": {
            "get": _operation(
                "This document",
                "The OpenAPI 3.1 description of this API.",
                [],
                {"200": _ok(_json({"type": "object"}), "OpenAPI document.", etag=False)},
                keyed=False,
                tag="meta",
                op_id="openapi",
            )
        },
        "/v1/health": {
            "get": _operation(
                "Health",
                "Storage, state and cache status with latencies. A cache that is down degrades "
                "nothing but speed: the status stays 200 (degraded); storage or state down: 503.",
                [],
                {
                    "200": _ok(_json(_ref("schemas", "Health")), "Serving.", etag=False),
                    "503": {
                        "description": "Storage or state unreachable.",
                        "content": _json(_ref("schemas", "Health")),
                    },
                },
                keyed=False,
                tag="meta",
                op_id="health",
            )
        },
        "/v1/bars/{symbol}": {
            "get": _operation(
                "Bars of one symbol",
                "Daily, weekly or monthly bars. Fresh after every write; cached under the "
                "stored object's generation. Weekly/monthly bars are labelled by the period's "
                "first day (Monday / the 1st).",
                [symbol, *bar_params],
                {"200": _ok(_BAR_CONTENT, "Bars."), **common},
                keyed=api_keys,
                tag="bars",
                op_id="getBars",
            )
        },
        "/v1/bars": {
            "get": _operation(
                "Bars of several symbols",
                f"Up to {p.MAX_BATCH} symbols in one request. Symbols with no bars are listed "
                "under errors (JSON) or in the Barlake-Missing-Symbols header (CSV, Parquet); "
                "404 only when none has bars.",
                [
                    _query(
                        "symbols",
                        {"type": "string", "pattern": p.SYMBOLS_REGEX, "not": _NO_DOUBLE_DOT},
                        f"Comma-separated symbols, at most {p.MAX_BATCH}.",
                        required=True,
                    ),
                    *bar_params,
                ],
                {
                    "200": _ok(
                        {**_BAR_CONTENT, "application/json": {"schema": _ref("schemas", "Batch")}},
                        "Bars per symbol.",
                    ),
                    **common,
                },
                keyed=api_keys,
                tag="bars",
                op_id="getBarsBatch",
            )
        },
        "/v1/symbols": {
            "get": _operation(
                "Inventory",
                "Every symbol with its freshness, paged by symbol, and lake-wide totals. Built "
                "from the data-quality profiles (refreshed after each write by the profile "
                "function) and cached for up to 60 s.",
                [
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": p.MAX_PAGE},
                        f"Page size (default {p.DEFAULT_PAGE}).",
                    ),
                    _query(
                        "after",
                        SYMBOL_SCHEMA,
                        "Start after this symbol (the previous page's next_after).",
                    ),
                ],
                {
                    "200": _ok(_json(_ref("schemas", "Symbols")), "A page.", etag=False),
                    "400": _ref("responses", "BadRequest"),
                },
                keyed=api_keys,
                tag="lake",
                op_id="listSymbols",
            )
        },
        "/v1/profiles/{symbol}": {
            "get": _operation(
                "Data-quality profile",
                "Gaps against the exchange calendar, staleness, jumps, zero-volume runs, "
                "quarantined rows and the last restatement of one symbol.",
                [symbol],
                {
                    "200": _ok(_json({"type": "object"}), "The profile."),
                    **common,
                },
                keyed=api_keys,
                tag="lake",
                op_id="getProfile",
            )
        },
        "/v1/provenance/{symbol}": {
            "get": _operation(
                "Provenance of the stored rows",
                "Which provider gave each stored daily row and when it was fetched, as runs of "
                "consecutive rows from one source (a fallback's rows are provisional until the "
                "primary provider answers for their dates).",
                [symbol],
                {
                    "200": _ok(_json({"type": "object"}), "The runs."),
                    **common,
                },
                keyed=api_keys,
                tag="lake",
                op_id="getProvenance",
            )
        },
        "/v1/history/{symbol}": {
            "get": _operation(
                "Restatement and quarantine history",
                "Every restatement healed (kinds, evidence, run) and every row quarantined "
                "(date, reason, run) of one symbol, newest first; empty lists when none. The "
                "dashboard's symbol page reads it.",
                [symbol],
                {
                    "200": _ok(_json({"type": "object"}), "The history."),
                    **common,
                },
                keyed=api_keys,
                tag="lake",
                op_id="getHistory",
            )
        },
        "/v1/runs/latest": {
            "get": _operation(
                "Latest run",
                "Completeness (batches done / expected) and per-symbol errors of the latest run.",
                [],
                {
                    "200": _ok(_json(_ref("schemas", "Run")), "The run."),
                    "304": _not_modified(),
                    "404": _ref("responses", "NotFound"),
                },
                keyed=api_keys,
                tag="runs",
                op_id="getLatestRun",
            )
        },
        "/v1/runs/{run_id}": {
            "get": _operation(
                "One run",
                "Completeness (batches done / expected) and per-symbol errors of one run.",
                [
                    {
                        "name": "run_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": p.RUN_ID_REGEX},
                    }
                ],
                {"200": _ok(_json(_ref("schemas", "Run")), "The run."), **common},
                keyed=api_keys,
                tag="runs",
                op_id="getRun",
            )
        },
        "/v1/cache/{symbol}": {
            "delete": _operation(
                "Forget a symbol's cached bodies (admin)",
                "Drops every cached body and generation of the symbol's objects; the next "
                "reads go to storage. Never needed for freshness (writes announce themselves); "
                "useful after writing objects by hand. Needs an API key: with no "
                "BARLAKE_API_KEYS configured it is disabled (403 admin_disabled).",
                [symbol],
                {
                    "200": {
                        "description": "Forgotten.",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["symbol", "dropped"],
                                "properties": {
                                    "symbol": {"type": "string"},
                                    "dropped": {"type": "integer"},
                                },
                            }
                        ),
                    },
                    "400": _ref("responses", "BadRequest"),
                    "403": _error("Admin endpoints are disabled: no API keys are configured."),
                    "404": _ref("responses", "NotFound"),
                },
                keyed=api_keys,
                tag="admin",
                op_id="forgetSymbol",
            )
        },
    }
    from barlake.api import openapi_analytics

    paths.update(openapi_analytics.paths(symbol, _operation, _ok, common, api_keys))
    from barlake.api.universes import openapi_paths

    paths.update(openapi_paths(api_keys, _operation, _ok, common))
    from barlake.api.market import openapi_paths as market_paths

    paths.update(market_paths(api_keys, _operation, common))
    from barlake.api.tiers import openapi_paths as tier_paths

    paths.update(tier_paths(api_keys, _operation, symbol, common))
    components: dict[str, Any] = {
        "schemas": {
            **openapi_analytics.SCHEMAS,
            "Bar": _BAR,
            "Bars": _BARS,
            "Batch": _BATCH,
            "Error": _ERROR,
            "InventoryEntry": _INVENTORY_ENTRY,
            "Symbols": _SYMBOLS,
            "Run": _RUN,
            "Check": _CHECK,
            "Health": _HEALTH,
        },
        "responses": {
            "BadRequest": _error("An input is not valid; the message names it."),
            "NotFound": _error("Nothing stored under that name."),
            "CorruptObject": _error(
                "code corrupt_object: the stored object cannot be decoded and is not served "
                "(reported by /v1/health and the profile; `barlake repair SYMBOL` heals it)."
            ),
            "Unauthorized": _error("Missing or unknown X-API-Key."),
        },
    }
    if api_keys:
        components["securitySchemes"] = {
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Barlake read API",
            "version": VERSION,
            "description": "Daily market data from the Barlake lake: bars (JSON, CSV, "
            "Parquet), profiles, inventory and run status. Errors are JSON with a message.",
        },
        "paths": paths,
        "components": components,
    }
