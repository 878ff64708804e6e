"""Reading live quotes: the cache first, the tier snapshots on a miss, each with its staleness.

The quote refresh (services/quotes.py) writes every quote twice: into the cache under
`core.live_quotes.cache_key` with a short TTL, and into its tier's snapshot object in the
derived bucket. A reader (API, CLI, movers, dashboard) asks the cache for all symbols in one
round trip; for the symbols it misses (expired, evicted, a cold Redis, no cache at all) it
reads the snapshots, one small object per tier. A symbol in neither has no quote.

Each answer carries `as_of` and a `stale` flag: stale while the symbol's market is open when
the quote is older than its tier's refresh interval with slack (`max_age`); while closed, when
the quote predates the last session's close by more than that (core.live_quotes.is_stale).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from barlake.core import live_quotes as lq
from barlake.core import market
from barlake.core.calendar import exchange_for
from barlake.ports import Cache, ObjectStore

log = logging.getLogger(__name__)

TIERS = (1, 2)  # the tiers with live quotes (tier 3 refreshes daily only)


@dataclass(frozen=True)
class QuoteView:
    """A quote as a reader sees it now."""

    quote: lq.LiveQuote
    stale: bool
    age_seconds: float
    served_from: str  # cache | snapshot

    def to_json(self) -> dict[str, Any]:
        out = lq.to_dict(self.quote)
        out.update(stale=self.stale, age_seconds=round(self.age_seconds, 1))
        out["served_from"] = self.served_from
        return out


class QuoteBook:
    def __init__(
        self,
        cache: Cache,
        derived: ObjectStore,
        clock: Callable[[], datetime],
        max_age: timedelta,
        tiers: Sequence[int] = TIERS,
    ) -> None:
        self.cache = cache
        self.derived = derived
        self.clock = clock
        self.max_age = max_age
        self.tiers = tuple(tiers)

    def snapshot(self, tier: int) -> lq.Snapshot | None:
        """The tier's snapshot, or None when there is none (or it cannot be read: logged)."""
        stored = self.derived.read(lq.snapshot_name(tier))
        if stored is None:
            return None
        try:
            return lq.decode_snapshot(stored.data)
        except ValueError as exc:
            log.warning("quote snapshot %s unreadable: %s", lq.snapshot_name(tier), exc)
            return None

    def get(self, symbols: Sequence[str]) -> dict[str, QuoteView]:
        """symbol → its quote view, for the symbols that have a quote (keys as asked)."""
        wanted = list(dict.fromkeys(symbols))
        found: dict[str, tuple[lq.LiveQuote, str]] = {}
        for symbol, raw in zip(wanted, self._cached(wanted), strict=True):
            if raw is None:
                continue
            try:
                found[symbol] = (lq.decode(raw), "cache")
            except ValueError as exc:
                log.warning("cached quote of %s unreadable: %s", symbol, exc)
        missing = [s for s in wanted if s not in found]
        if missing:
            snapshots = [s for t in self.tiers if (s := self.snapshot(t)) is not None]
            for symbol in missing:
                for snap in snapshots:
                    quote = snap.by_symbol().get(symbol.upper())
                    if quote is not None:
                        found[symbol] = (quote, "snapshot")
                        break
        now = self.clock()
        return {s: self._view(q, src, now) for s, (q, src) in found.items()}

    def _cached(self, symbols: list[str]) -> list[bytes | None]:
        try:
            return self.cache.get_many([lq.cache_key(s) for s in symbols])
        except Exception as exc:  # a cache outage degrades to the snapshots, never fails
            log.warning("quote cache unavailable, reading snapshots: %s", exc)
            return [None] * len(symbols)

    def _view(self, quote: lq.LiveQuote, source: str, now: datetime) -> QuoteView:
        try:
            status = market.status(exchange_for(quote.symbol), now)
        except ValueError:  # no calendar for it: judge by age alone
            return QuoteView(
                quote, now - quote.as_of > self.max_age, lq.age_seconds(quote, now), source
            )
        stale = lq.is_stale(
            quote,
            now,
            market_open=status.is_open,
            max_age=self.max_age,
            last_close=None if status.is_open else last_close(status, now),
        )
        return QuoteView(quote, stale, lq.age_seconds(quote, now), source)


def last_close(status: market.MarketStatus, now: datetime) -> datetime | None:
    """The close of the exchange's last session that ended at or before `now` (None: unknown)."""
    if status.session_close is not None and status.session_close <= now:
        return status.session_close
    zone = ZoneInfo(status.timezone)
    local = now.astimezone(zone).date()
    for back in range(1, 11):  # the longest exchange closure is well under ten days
        probe = datetime.combine(local - timedelta(days=back), time(23, 59), zone)
        try:
            earlier = market.status(status.exchange, probe)
        except ValueError:
            return None
        if earlier.session_close is not None and earlier.session_close <= now:
            return earlier.session_close
    return None


def views_json(views: Mapping[str, QuoteView]) -> list[dict[str, Any]]:
    return [views[s].to_json() for s in views]
