"""Live quotes: the record, its wire forms, its staleness and the movers ranking.

A live quote is the latest trade-time view of a symbol during its session (last price, change,
day range, volume, previous close, market cap where the provider gives it). It is *not* a bar:
quotes live in the cache (short TTL) and in one small snapshot object per tier in the derived
bucket, and never reach the daily lake (the final bar comes from the daily run).

This module is the one contract between the quote refresh (services/quotes.py writes) and
everything that reads quotes (the API, the CLI, movers, the dashboard): the cache key, the
snapshot object's name and JSON, and the rule for "stale". Pure: no clock, no network; the
caller passes `now`.

Currency: Yahoo quotes London in pence (`GBp`), Johannesburg in cents (`ZAc`) and Tel Aviv in
agorot (`ILA`), the same minor units as its daily bars, so prices keep the provider's unit (a
quote and the lake's bars compare directly) and say so in `currency`; the market cap is in the
major unit (`market_cap_currency`, e.g. `GBP`), as Yahoo gives it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

CACHE_PREFIX = "quote:v1:"
SNAPSHOT_PREFIX = "quotes/"

# Yahoo's minor-unit currency codes → (major currency, minor units per major unit).
MINOR_UNITS: dict[str, tuple[str, int]] = {
    "GBp": ("GBP", 100),
    "GBX": ("GBP", 100),
    "ZAc": ("ZAR", 100),
    "ILA": ("ILS", 100),
}


@dataclass(frozen=True)
class LiveQuote:
    symbol: str
    price: float
    as_of: datetime  # aware, UTC: the provider's time of the last trade
    source: str  # the provider that answered ("yahoo", "finnhub", ...)
    previous_close: float | None = None
    change: float | None = None
    change_pct: float | None = None
    open: float | None = None
    high: float | None = None
    low: float | None = None
    volume: int | None = None
    market_cap: float | None = None
    currency: str | None = None  # the unit of the prices, as the provider gives it (GBp)
    market_state: str | None = None  # the provider's own word (REGULAR, PRE, POST, CLOSED)

    def __post_init__(self) -> None:
        if self.as_of.tzinfo is None:
            raise ValueError(f"{self.symbol}: as_of must be timezone-aware")
        if not _finite(self.price) or self.price <= 0:
            raise ValueError(f"{self.symbol}: price must be a positive number, got {self.price}")

    @property
    def market_cap_currency(self) -> str | None:
        """The currency of `market_cap`: the major unit of `currency` (GBp → GBP)."""
        if self.currency is None:
            return None
        return MINOR_UNITS.get(self.currency, (self.currency, 1))[0]

    def completed(self) -> LiveQuote:
        """Change and change % derived from the previous close where the provider left them out."""
        change, pct = self.change, self.change_pct
        if change is None and _finite(self.previous_close):
            change = self.price - self.previous_close  # type: ignore[operator]
        if (
            pct is None
            and change is not None
            and _finite(self.previous_close)
            and self.previous_close
        ):
            pct = 100.0 * change / self.previous_close  # type: ignore[operator]
        return replace(self, change=change, change_pct=pct)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# ---------------------------------------------------------------------------- wire forms


def to_dict(quote: LiveQuote) -> dict[str, Any]:
    out = asdict(quote)
    out["as_of"] = quote.as_of.astimezone(UTC).isoformat().replace("+00:00", "Z")
    out["market_cap_currency"] = quote.market_cap_currency
    return out


def from_dict(data: Mapping[str, Any]) -> LiveQuote:
    """The quote `to_dict` wrote. Raises ValueError on a record that is not one."""
    try:
        as_of = datetime.fromisoformat(str(data["as_of"]).replace("Z", "+00:00"))
        volume = data.get("volume")
        return LiveQuote(
            symbol=str(data["symbol"]),
            price=float(data["price"]),
            as_of=as_of,
            source=str(data["source"]),
            previous_close=_opt_float(data.get("previous_close")),
            change=_opt_float(data.get("change")),
            change_pct=_opt_float(data.get("change_pct")),
            open=_opt_float(data.get("open")),
            high=_opt_float(data.get("high")),
            low=_opt_float(data.get("low")),
            volume=int(volume) if volume is not None else None,
            market_cap=_opt_float(data.get("market_cap")),
            currency=data.get("currency"),
            market_state=data.get("market_state"),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a quote record: {exc}") from exc


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def cache_key(symbol: str) -> str:
    return CACHE_PREFIX + symbol.upper()


def encode(quote: LiveQuote) -> bytes:
    return json.dumps(to_dict(quote), separators=(",", ":"), allow_nan=False).encode()


def decode(raw: bytes) -> LiveQuote:
    return from_dict(json.loads(raw))


# ---------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class Snapshot:
    """The last refresh of one tier: what a cache miss reads (one object per tier)."""

    tier: int
    written_at: datetime  # when the refresh finished (UTC)
    quotes: tuple[LiveQuote, ...]

    def by_symbol(self) -> dict[str, LiveQuote]:
        return {q.symbol.upper(): q for q in self.quotes}


def snapshot_name(tier: int) -> str:
    """The derived bucket's object for `tier`'s snapshot: `quotes/tier-1.json`."""
    return f"{SNAPSHOT_PREFIX}tier-{int(tier)}.json"


def encode_snapshot(snapshot: Snapshot) -> bytes:
    body = {
        "tier": snapshot.tier,
        "written_at": snapshot.written_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "quotes": [to_dict(q) for q in sorted(snapshot.quotes, key=lambda q: q.symbol)],
    }
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def decode_snapshot(raw: bytes) -> Snapshot:
    """The snapshot `encode_snapshot` wrote. Raises ValueError on anything else."""
    try:
        body = json.loads(raw)
        written = datetime.fromisoformat(str(body["written_at"]).replace("Z", "+00:00"))
        quotes = tuple(from_dict(q) for q in body["quotes"])
        return Snapshot(tier=int(body["tier"]), written_at=written, quotes=quotes)
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a quote snapshot: {exc}") from exc


def merge_snapshot(
    previous: Snapshot | None,
    fresh: Iterable[LiveQuote],
    tier: int,
    written_at: datetime,
    members: Sequence[str],
) -> Snapshot:
    """The tier's new snapshot: the fresh quotes, and the previous quote of a member the refresh
    did not answer this time (a stale quote stays visible, flagged by its age, rather than
    vanishing). Symbols no longer in the tier are dropped."""
    keep = {s.upper() for s in members}
    merged = previous.by_symbol() if previous is not None else {}
    for q in fresh:
        old = merged.get(q.symbol.upper())
        if old is None or q.as_of >= old.as_of:  # never replace a newer quote with an older one
            merged[q.symbol.upper()] = q
    quotes = tuple(q for s, q in sorted(merged.items()) if s in keep)
    return Snapshot(tier=tier, written_at=written_at, quotes=quotes)


# ---------------------------------------------------------------------------- staleness


def is_stale(
    quote: LiveQuote,
    now: datetime,
    *,
    market_open: bool,
    max_age: timedelta,
    last_close: datetime | None = None,
) -> bool:
    """Whether a reader should distrust `quote` as the current price.

    While the market is open a quote older than `max_age` (the refresh interval with slack) is
    stale. While it is closed the last trade does not move, so a quote is stale only when it
    predates the end of the last session (`last_close`, aware) by more than `max_age`.
    """
    if market_open:
        return now - quote.as_of > max_age
    if last_close is None:
        return False
    return last_close - quote.as_of > max_age


def age_seconds(quote: LiveQuote, now: datetime) -> float:
    return max(0.0, (now - quote.as_of).total_seconds())


# ---------------------------------------------------------------------------- movers


@dataclass(frozen=True)
class Move:
    """One symbol's move over its latest session, from a quote or from the last two daily bars."""

    symbol: str
    price: float
    change: float
    change_pct: float
    volume: int | None
    as_of: str  # a timestamp (quote) or a session date (daily), ISO


def rank_movers(moves: Iterable[Move], limit: int) -> dict[str, list[Move]]:
    """Top gainers (largest change %), losers (most negative) and most active (volume × price,
    the dollar volume: raw share counts favour penny stocks). Ties break by symbol so the
    answer is the same on every call."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    ok = [m for m in moves if _finite(m.change_pct) and _finite(m.price)]
    gainers = sorted((m for m in ok if m.change_pct > 0), key=lambda m: (-m.change_pct, m.symbol))
    losers = sorted((m for m in ok if m.change_pct < 0), key=lambda m: (m.change_pct, m.symbol))
    active = sorted(
        (m for m in ok if m.volume), key=lambda m: (-(m.volume or 0) * m.price, m.symbol)
    )
    return {"gainers": gainers[:limit], "losers": losers[:limit], "most_active": active[:limit]}
