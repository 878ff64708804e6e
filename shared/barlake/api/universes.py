"""`GET /v1/universes` and `GET /v1/universes/{name}?as_of=`: the lists and their members.

Registered on ApiApp from a few lines in app.py, and documented by `openapi_paths` (merged into
the document by openapi.py), so routes and document stay side by side. Both routes are data
routes (X-API-Key when keys are set), answered from the state store with a content ETag
(If-None-Match → 304), never cached in Redis: a universe is a handful of small documents.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from barlake.api import params as p
from barlake.core.universe import NAME_REGEX, InvalidUniverseError, validate_name

if TYPE_CHECKING:
    from barlake.api.app import ApiApp, Environ, Reply
    from barlake.services.universes import UniverseService

AS_OF = frozenset({"as_of"})


def register(api: ApiApp, universes: UniverseService) -> None:
    from barlake.api.app import GET_METHODS

    def listing(environ: Environ) -> Reply:
        params = p.query(environ.get("QUERY_STRING", ""), AS_OF)
        rows = universes.summaries(p.day(params, "as_of"))
        return _reply(api, environ, {"universes": rows})

    def one(environ: Environ, raw_name: str) -> Reply:
        try:
            name = validate_name(raw_name)
        except InvalidUniverseError as exc:
            raise p.bad("name", str(exc)) from None
        params = p.query(environ.get("QUERY_STRING", ""), AS_OF)
        return _reply(api, environ, universes.show(name, p.day(params, "as_of")))

    api._exact["/v1/universes"] = (GET_METHODS, True, listing)
    api._prefixed.append(("/v1/universes/", GET_METHODS, one))


def _reply(api: ApiApp, environ: Environ, payload: Any) -> Reply:
    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    return api._revalidated(environ, body, "miss")


_SUMMARY = {
    "type": "object",
    "required": ["name", "tags", "source", "description"],
    "properties": {
        "name": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "source": {"type": "string"},
        "description": {"type": "string"},
        "members": {"type": "integer", "description": "Members on as_of (default today)."},
        "ever_members": {"type": "integer", "description": "Symbols that ever were members."},
    },
}
_MEMBERS = {
    "type": "object",
    "required": ["name", "tags", "source", "description", "as_of", "count", "symbols"],
    "properties": {
        **_SUMMARY["properties"],
        "as_of": {"type": "string", "format": "date"},
        "count": {"type": "integer"},
        "symbols": {"type": "array", "items": {"type": "string"}},
    },
}


def openapi_paths(api_keys: bool, operation: Any, ok: Any, common: dict[str, Any]) -> dict:
    """The two paths, built with openapi.py's own helpers (passed in: no import cycle)."""
    as_of = {
        "name": "as_of",
        "in": "query",
        "required": False,
        "description": "Membership on this day (point-in-time, no survivorship bias); "
        "default today (UTC).",
        "schema": {"type": "string", "format": "date", "pattern": p.DATE_REGEX},
    }
    return {
        "/v1/universes": {
            "get": operation(
                "Universes",
                "Every named universe: tags, source, members on as_of and ever.",
                [as_of],
                {
                    "200": ok(
                        {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["universes"],
                                    "properties": {
                                        "universes": {"type": "array", "items": _SUMMARY}
                                    },
                                }
                            }
                        },
                        "The universes.",
                    ),
                    "304": common["304"],
                    "400": common["400"],
                },
                keyed=api_keys,
                tag="universes",
                op_id="listUniverses",
            )
        },
        "/v1/universes/{name}": {
            "get": operation(
                "One universe's members",
                "The members of the universe on as_of: those whose membership period holds "
                "that day ([from, to), to exclusive).",
                [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": NAME_REGEX, "maxLength": 64},
                    },
                    as_of,
                ],
                {
                    "200": ok({"application/json": {"schema": _MEMBERS}}, "Members."),
                    **common,
                },
                keyed=api_keys,
                tag="universes",
                op_id="getUniverse",
            )
        },
    }
