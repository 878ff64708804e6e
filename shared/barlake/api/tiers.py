"""`GET /v1/tiers/{symbol}` (the symbol's tier, computed and pinned) and `PUT /v1/tiers/{symbol}`
with `{"tier": 1|2|3|null}` (admin: pin it, or null to unpin; barlake.services.tiers).

Behind X-API-Key like every data and admin route when BARLAKE_API_KEYS is set.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from barlake.api import params as p

if TYPE_CHECKING:
    from barlake.api.app import ApiApp, Environ, Reply
    from barlake.services.tiers import TierService

MAX_BODY = 1024
METHODS = ("GET", "HEAD", "PUT", "OPTIONS")


def _body(environ: Environ) -> Any:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise p.bad("body", "Content-Length is not a number") from None
    if not 0 < length <= MAX_BODY:
        raise p.bad(
            "body", f'a JSON body {{"tier": 1|2|3|null}} is needed (at most {MAX_BODY} bytes)'
        )
    raw = environ["wsgi.input"].read(length)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise p.bad("body", "the body is not JSON") from None
    if not isinstance(body, dict) or set(body) != {"tier"}:
        raise p.bad("body", 'the body must be {"tier": 1|2|3|null}')
    tier = body["tier"]
    if tier is not None and (isinstance(tier, bool) or tier not in (1, 2, 3)):
        raise p.bad("tier", f"tier must be 1, 2, 3 or null, got {str(tier)[:20]!r}")
    return tier


def register(api: ApiApp, tiers: TierService) -> None:
    from barlake.api.app import ApiError, _json_reply

    def tier(environ: Environ, raw_symbol: str) -> Reply:
        symbol = p.symbol(raw_symbol)
        p.query(environ.get("QUERY_STRING", ""), frozenset())
        if environ.get("REQUEST_METHOD") == "PUT":
            if not api._key_digests:  # an admin action: never open to anyone (README "API")
                raise ApiError(
                    403,
                    "admin_disabled",
                    "admin endpoints need an API key; none is configured (BARLAKE_API_KEYS)",
                )
            return _json_reply(200, tiers.pin(symbol, _body(environ)))
        return _json_reply(200, tiers.refresh(symbol, apply=False))

    api._prefixed.append(("/v1/tiers/", METHODS, tier))


_TIER = {
    "type": "object",
    "required": ["symbol", "tier", "computed", "override", "median_dollar_volume", "sessions"],
    "properties": {
        "symbol": {"type": "string"},
        "tier": {"enum": [1, 2, 3]},
        "computed": {"enum": [1, 2, 3]},
        "override": {"enum": [1, 2, 3, None]},
        "median_dollar_volume": {"type": ["number", "null"]},
        "sessions": {"type": "integer"},
    },
}


def openapi_paths(api_keys: bool, operation: Any, symbol: dict, common: dict) -> dict:
    from barlake.api.openapi import _error

    ok = {"description": "The tier.", "content": {"application/json": {"schema": _TIER}}}
    errors = {"400": common["400"], "404": common["404"]}
    return {
        "/v1/tiers/{symbol}": {
            "get": operation(
                "A symbol's tier",
                "Computed from the median close × volume of its latest 20 stored sessions "
                "(tier 1 ≥ 100M, tier 2 ≥ 5M, in its trading currency); an admin pin wins.",
                [symbol],
                {"200": ok, **errors},
                keyed=api_keys,
                tag="tiers",
                op_id="getTier",
            ),
            "put": {
                **operation(
                    "Pin a symbol's tier (admin)",
                    "Pin the symbol to a tier whatever its volume, or unpin it with null. "
                    "Needs an API key: with no BARLAKE_API_KEYS configured it is disabled "
                    "(403 admin_disabled).",
                    [symbol],
                    {"200": ok, **errors, "403": _error("Admin endpoints are disabled.")},
                    keyed=api_keys,
                    tag="admin",
                    op_id="setTier",
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["tier"],
                                "additionalProperties": False,
                                "properties": {"tier": {"enum": [1, 2, 3, None]}},
                            }
                        }
                    },
                },
            },
        }
    }
