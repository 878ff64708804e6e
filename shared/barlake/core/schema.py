"""The data contract: Arrow schemas for bars, corporate actions and quarantined rows.

Values are stored exactly as the provider returned them (Yahoo's prices are float32 values
widened to float64; we keep the float64 so a value read back equals the value received).
Adjusted and unadjusted views are derived on read, never stored.
"""

from __future__ import annotations

import re
from datetime import date

import pyarrow as pa

SCHEMA_VERSION = 1

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "adj_close")
VALUE_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "volume")

# close is split-adjusted (as Yahoo reports it); adj_close is split+dividend adjusted.
BAR_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("date", pa.date32(), nullable=False),
        pa.field("open", pa.float64()),
        pa.field("high", pa.float64()),
        pa.field("low", pa.float64()),
        pa.field("close", pa.float64()),
        pa.field("adj_close", pa.float64()),
        pa.field("volume", pa.int64()),
    ]
)

# One row per event. kind is "dividend" (value = cash amount per share) or "split"
# (value = new shares per old share: 4.0 for a 4:1 split, 0.2 for a 1:5 consolidation).
ACTION_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("date", pa.date32(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
    ]
)
ACTION_KINDS = ("dividend", "split")

# A provider row that failed validation: the row as received plus why it was refused.
QUARANTINE_SCHEMA = pa.schema([*BAR_SCHEMA, pa.field("reason", pa.string(), nullable=False)])

# Weekly/monthly bars: labelled by the period's first calendar day (Monday / the 1st).
PERIOD_SCHEMA = pa.schema(
    [
        *BAR_SCHEMA,
        pa.field("sessions", pa.int32(), nullable=False),
        pa.field("provisional", pa.bool_(), nullable=False),
    ]
)

# Yahoo symbols: letters, digits and . - = ^ (BRK-B, ^GSPC, EURUSD=X, BTC-USD, 7203.T).
# Upper-case only: Yahoo symbols are case-insensitive and we store one canonical spelling.
SYMBOL_PATTERN = re.compile(r"^\^?[A-Z0-9][A-Z0-9.\-=]{0,23}$")
MAX_SYMBOL_LENGTH = 25


class InvalidSymbolError(ValueError):
    """A string that cannot be a Yahoo symbol (and so can never name an object)."""


def normalize_symbol(raw: str) -> str:
    """Canonical spelling of a symbol, or InvalidSymbolError saying why not."""
    symbol = raw.strip().upper()
    if not symbol:
        raise InvalidSymbolError("empty symbol")
    if len(symbol) > MAX_SYMBOL_LENGTH or not SYMBOL_PATTERN.match(symbol):
        raise InvalidSymbolError(
            f"invalid symbol {raw!r}: use letters, digits and . - = ^ "
            f"(at most {MAX_SYMBOL_LENGTH} characters), e.g. AAPL, BRK-B, ^GSPC, 7203.T"
        )
    if ".." in symbol:
        raise InvalidSymbolError(f"invalid symbol {raw!r}: '..' is not allowed")
    return symbol


def empty_bars() -> pa.Table:
    return BAR_SCHEMA.empty_table()


def empty_actions() -> pa.Table:
    return ACTION_SCHEMA.empty_table()


def bars_from_pylist(symbol: str, rows: list[dict]) -> pa.Table:
    """Build a bar table from dicts with date/open/high/low/close/adj_close/volume keys."""
    return pa.Table.from_pylist([{"symbol": symbol, **row} for row in rows], schema=BAR_SCHEMA)


def actions_from_pylist(symbol: str, rows: list[tuple[date, str, float]]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"symbol": symbol, "date": d, "kind": k, "value": v} for d, k, v in rows],
        schema=ACTION_SCHEMA,
    )


def conform_bars(table: pa.Table) -> pa.Table:
    """Cast a table with the bar columns (in any order, any extra columns) to BAR_SCHEMA."""
    return table.select(BAR_SCHEMA.names).cast(BAR_SCHEMA)
