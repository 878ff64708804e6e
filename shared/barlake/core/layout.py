"""Object names: one per symbol, safe for every symbol Yahoo uses, identical in every store.

A symbol becomes an object key by keeping [A-Z0-9.-] and escaping any other character as
`_XX` (its hex code). `_` is not in the symbol alphabet, so the escape is unambiguous and
reversible: `^GSPC` → `_5EGSPC`, `EURUSD=X` → `EURUSD_3DX`, `BRK-B` and `7203.T` unchanged.
Keys never contain `/`, so no input can escape its prefix; globs such as `daily/*.parquet`
read the whole lake as one table.
"""

from __future__ import annotations

import re

from barlake.core.schema import normalize_symbol

RAW_DAILY_PREFIX = "daily/"
DERIVED_PREFIXES = {"1wk": "weekly/", "1mo": "monthly/"}
PROFILE_PREFIX = "profiles/"

_SAFE = re.compile(r"[A-Z0-9.\-]")
_ESCAPE = re.compile(r"_([0-9A-F]{2})")


def symbol_key(symbol: str) -> str:
    canonical = normalize_symbol(symbol)
    return "".join(c if _SAFE.fullmatch(c) else f"_{ord(c):02X}" for c in canonical)


def key_symbol(key: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), key)


def daily_name(symbol: str) -> str:
    return f"{RAW_DAILY_PREFIX}{symbol_key(symbol)}.parquet"


def period_name(symbol: str, interval: str) -> str:
    return f"{DERIVED_PREFIXES[interval]}{symbol_key(symbol)}.parquet"


def profile_name(symbol: str) -> str:
    return f"{PROFILE_PREFIX}{symbol_key(symbol)}.json"


def symbol_of_daily(name: str) -> str | None:
    """The symbol a raw object belongs to, or None when it is not a daily bars object."""
    if not name.startswith(RAW_DAILY_PREFIX) or not name.endswith(".parquet"):
        return None
    key = name[len(RAW_DAILY_PREFIX) : -len(".parquet")]
    if "/" in key:
        return None
    try:
        symbol = normalize_symbol(key_symbol(key))
    except ValueError:
        return None
    # Only the canonical key names a symbol: daily/aapl.parquet or daily/_41APL.parquet are
    # stray objects, not AAPL, and must not feed AAPL's derived outputs.
    return symbol if symbol_key(symbol) == key else None
