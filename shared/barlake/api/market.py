"""`GET /v1/market/status?exchange=XNYS[&at=…|&date=…]`: open, closed or on a break, early close,
this session's open and close, the next open and close (barlake.core.market).

Without `at`/`date` the answer is for now (the app's clock) and may be cached by clients for
30 s; `at` (RFC 3339 date-time) asks about an instant, `date` (YYYY-MM-DD) about that day at
12:00 exchange time (`at` wins when both are given; `date` is still validated). An instant
outside the exchange's calendar (2010..2035, or the calendar's own published range) is a 404:
nothing is known there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from barlake.api import params as p

if TYPE_CHECKING:
    from barlake.api.app import ApiApp, Environ, Reply

PARAMS = frozenset({"exchange", "at", "date"})
EXCHANGE_REGEX = r"^[A-Z0-9]{3,6}$"
_EXCHANGE = re.compile(EXCHANGE_REGEX)
# RFC 3339 date-time, the `format: date-time` of the OpenAPI document (case-insensitive).
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_instant(raw: str) -> datetime:
    """An RFC 3339 date-time as an aware datetime. Syntax errors are 400s; a well-formed value
    Python cannot hold (year 0, a leap second read as :59) is a 404 outside any calendar."""
    m = _RFC3339.match(raw)
    if m is None:
        raise p.bad(
            "at", f"at must be an RFC 3339 date-time like 2025-11-28T15:00:00Z, got {raw[:40]!r}"
        )
    year, month, day, hour, minute, second, frac, zone = m.groups()
    text = (
        f"{year}-{month}-{day}T{hour}:{minute}:{min(int(second), 59):02d}"
        f"{(frac or '')[:7]}{'+00:00' if zone in ('Z', 'z') else zone}"
    )
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise p.ApiError(404, "not_found", f"no calendar for {raw[:40]!r}") from None


def register(api: ApiApp, clock: Callable[[], datetime]) -> None:
    from barlake.api.app import GET_METHODS, _json_reply

    def market_status(environ: Environ) -> Reply:
        from barlake.core import market

        params = p.query(environ.get("QUERY_STRING", ""), PARAMS)
        exchange = params.get("exchange", "XNYS")
        if not _EXCHANGE.match(exchange):
            raise p.bad(
                "exchange",
                f"exchange is an exchange_calendars code like XNYS, got {exchange[:40]!r}",
            )
        day = p.day(params, "date")
        try:
            if day is not None and "at" not in params:
                tz = market._times(exchange).tz if exchange != market.ALWAYS else "UTC"
                at = datetime.combine(day, time(12), ZoneInfo(tz))
            else:
                at = parse_instant(params["at"]) if "at" in params else clock()
            found = market.status(exchange, at)
        except market.UnknownExchangeError as exc:  # well-formed, but no such calendar
            raise p.ApiError(404, "not_found", str(exc)) from None
        except ValueError as exc:  # outside the calendar's range
            raise p.ApiError(404, "not_found", str(exc)) from None
        # Now changes every minute; a past or future instant's status never changes.
        fixed = "at" in params or "date" in params
        return _json_reply(200, found.to_json(), f"private, max-age={3600 if fixed else 30}")

    api._exact["/v1/market/status"] = (GET_METHODS, True, market_status)


_STATUS = {
    "type": "object",
    "required": ["exchange", "timezone", "at", "state", "reason", "is_open", "early_close"],
    "properties": {
        "exchange": {"type": "string"},
        "timezone": {"type": "string"},
        "at": {"type": "string", "format": "date-time"},
        "state": {"enum": ["open", "break", "closed"]},
        "reason": {"enum": ["open", "break", "weekend", "holiday", "before_open", "after_close"]},
        "is_open": {"type": "boolean"},
        "session": {"type": ["string", "null"], "format": "date"},
        "early_close": {"type": "boolean"},
        "session_open": {"type": ["string", "null"], "format": "date-time"},
        "session_close": {"type": ["string", "null"], "format": "date-time"},
        "next_open": {"type": ["string", "null"], "format": "date-time"},
        "next_close": {"type": ["string", "null"], "format": "date-time"},
    },
}


def openapi_paths(api_keys: bool, operation: Any, common: dict[str, Any]) -> dict:
    return {
        "/v1/market/status": {
            "get": operation(
                "Market status",
                "Whether the exchange is open (or on a lunch break) at an instant, whether the "
                "session closes early, its open and close, and the next open and close, from "
                "exchange_calendars. Default: XNYS, now.",
                [
                    {
                        "name": "exchange",
                        "in": "query",
                        "required": False,
                        "description": "exchange_calendars code (XNYS, XLON, XTKS…) or ALWAYS "
                        "(crypto, 24/7); an unknown code is a 404.",
                        "schema": {"type": "string", "pattern": EXCHANGE_REGEX, "default": "XNYS"},
                    },
                    {
                        "name": "at",
                        "in": "query",
                        "required": False,
                        "description": "The instant (RFC 3339); default now.",
                        "schema": {"type": "string", "format": "date-time"},
                    },
                    {
                        "name": "date",
                        "in": "query",
                        "required": False,
                        "description": "A day: its status at 12:00 local (unless at is given).",
                        "schema": {"type": "string", "format": "date", "pattern": p.DATE_REGEX},
                    },
                ],
                {
                    "200": {
                        "description": "The status.",
                        "content": {"application/json": {"schema": _STATUS}},
                    },
                    "400": common["400"],
                    "404": common["404"],
                },
                keyed=api_keys,
                tag="market",
                op_id="getMarketStatus",
            )
        }
    }
