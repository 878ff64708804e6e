"""Validation of every input the API accepts: strict, pure, and in one place.

Strict on purpose: an unknown or repeated query parameter, a date that is not YYYY-MM-DD, a
symbol outside the symbol alphabet — each is a 400 with a message naming the parameter, never
a guess. Symbols become object names only through `barlake.core.layout`, which escapes every
character outside [A-Z0-9.-]: no input can leave its object prefix. The same rules are written
into the OpenAPI document (openapi.py), and the fuzz test holds the two together.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import parse_qsl

INTERVALS = ("1d", "1wk", "1mo")
ADJUSTMENTS = ("split", "total", "none")
FORMATS = ("json", "csv", "parquet")
MAX_LIMIT = 100_000
MAX_BATCH = 50
MAX_PAGE = 1000
DEFAULT_PAGE = 100
MAX_QUERY_FIELDS = 16

# The symbol rules of barlake.core.schema, case-insensitive (symbols are upper-cased): letters,
# digits and . - =, an optional leading ^, at most 25 characters with the ^, and no "..".
# Written without lookarounds, so OpenAPI tools can generate from them (the ".." rule is a
# separate `not` in the document).
SYMBOL_CHARS = r"\^?[A-Za-z0-9][A-Za-z0-9.=-]{0,23}"
SYMBOL_REGEX = f"^{SYMBOL_CHARS}$"
SYMBOLS_REGEX = f"^{SYMBOL_CHARS}(,{SYMBOL_CHARS}){{0,{MAX_BATCH - 1}}}$"
SYMBOL_MAX_LENGTH = 25
RUN_ID_REGEX = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
DATE_REGEX = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_SYMBOL = re.compile(SYMBOL_REGEX)
_RUN_ID = re.compile(RUN_ID_REGEX)
_DATE = re.compile(DATE_REGEX)
_DIGITS = re.compile(r"^[0-9]{1,7}$")


class ApiError(Exception):
    """An answer other than success: status, a stable code, a message for people."""

    def __init__(self, status: int, code: str, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.parameter = parameter


def bad(parameter: str, message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", message, parameter)


def symbol(raw: str, parameter: str = "symbol") -> str:
    from barlake.core.schema import InvalidSymbolError, normalize_symbol  # pyarrow: lazily

    if len(raw) > SYMBOL_MAX_LENGTH or not _SYMBOL.match(raw):
        raise bad(
            parameter,
            f"{parameter} {raw[:40]!r} is not a symbol: use letters, digits and . - = ^ "
            f"(at most {SYMBOL_MAX_LENGTH} characters), e.g. AAPL, BRK-B, ^GSPC, 7203.T",
        )
    try:
        return normalize_symbol(raw)
    except InvalidSymbolError as exc:
        raise bad(parameter, str(exc)) from exc


def run_id(raw: str) -> str:
    if not _RUN_ID.match(raw):
        raise bad("run_id", "run_id is letters, digits and . _ : - (at most 128 characters)")
    return raw


def query(raw: str, allowed: frozenset[str]) -> dict[str, str]:
    """The query string as a dict: every name allowed, none repeated."""
    try:
        pairs = parse_qsl(
            raw, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_QUERY_FIELDS
        )
    except ValueError as exc:
        raise bad("query", f"query string not understood: {exc}") from exc
    out: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise bad(name[:40], f"unknown parameter {name[:40]!r} (known: {known})")
        if name in out:
            raise bad(name, f"parameter {name!r} given more than once")
        out[name] = value
    return out


def choice(params: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = params.get(name, default)
    if value not in allowed:
        raise bad(name, f"{name} must be one of {', '.join(allowed)}, got {value[:40]!r}")
    return value


def day(params: dict[str, str], name: str) -> date | None:
    value = params.get(name)
    if value is None:
        return None
    if _DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise bad(name, f"{name} must be a date like 2024-01-31, got {value[:40]!r}")


def _instant(params: dict[str, str], name: str) -> datetime | None:
    from barlake.services.asof import parse_as_of

    value = params.get(name)
    if value is None:
        return None
    try:
        return parse_as_of(value)
    except ValueError as exc:
        raise bad(name, str(exc)) from exc


def integer(
    params: dict[str, str], name: str, low: int, high: int, default: int | None = None
) -> int | None:
    value = params.get(name)
    if value is None:
        return default
    if not _DIGITS.match(value) or not low <= int(value) <= high:
        raise bad(name, f"{name} must be a whole number from {low} to {high}, got {value[:40]!r}")
    return int(value)


@dataclass(frozen=True)
class BarsQuery:
    interval: str = "1d"
    start: date | None = None
    end: date | None = None
    limit: int | None = None
    adjust: str = "split"
    format: str = "json"
    as_of: datetime | None = None  # an as-of read (barlake.services.asof)

    @property
    def whole(self) -> bool:
        """No window: every stored bar."""
        return self.start is None and self.end is None and self.limit is None

    @functools.cached_property
    def key(self) -> str:
        return self.variant()

    def variant(self) -> str:
        """What, besides the object's generation, decides the body: part of its cache key."""
        start = self.start.isoformat() if self.start else ""
        end = self.end.isoformat() if self.end else ""
        variant = f"{self.interval}:{self.adjust}:{start}:{end}:{self.limit or ''}:{self.format}"
        return variant + (f":{self.as_of.isoformat()}" if self.as_of else "")


BARS_PARAMS = frozenset({"interval", "start", "end", "limit", "adjust", "format", "as_of"})
BATCH_PARAMS = BARS_PARAMS | {"symbols"}
SYMBOLS_PARAMS = frozenset({"limit", "after"})


def bars_query(params: dict[str, str]) -> BarsQuery:
    q = BarsQuery(
        interval=choice(params, "interval", INTERVALS, "1d"),
        start=day(params, "start"),
        end=day(params, "end"),
        limit=integer(params, "limit", 1, MAX_LIMIT),
        adjust=choice(params, "adjust", ADJUSTMENTS, "split"),
        format=choice(params, "format", FORMATS, "json"),
        as_of=_instant(params, "as_of"),
    )
    if q.start and q.end and q.start > q.end:
        raise bad("start", f"start {q.start} is after end {q.end}")
    return q


def symbol_list(params: dict[str, str]) -> list[str]:
    raw = params.get("symbols")
    if raw is None:
        raise bad("symbols", "symbols is required: a comma-separated list, e.g. AAPL,MSFT")
    items = raw.split(",")
    if len(items) > MAX_BATCH:
        raise bad("symbols", f"at most {MAX_BATCH} symbols per request, got {len(items)}")
    return list(dict.fromkeys(symbol(item, "symbols") for item in items))
