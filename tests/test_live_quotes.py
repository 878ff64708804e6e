"""The live-quote contract (core/live_quotes.py) and its reader (services/quote_book.py).

Real adapters: the in-memory cache with an injected clock (expiry), the local object store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from barlake.adapters.local_store import LocalObjectStore
from barlake.adapters.memory_cache import MemoryCache
from barlake.core import live_quotes as lq
from barlake.core import market
from barlake.services.quote_book import QuoteBook, last_close

T0 = datetime(2025, 11, 26, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 New York: XNYS open


def _quote(symbol: str = "AAPL", price: float = 200.0, at: datetime = T0, **kw) -> lq.LiveQuote:
    return lq.LiveQuote(symbol, price, at, "yahoo", **kw)


prices = st.floats(min_value=0.0001, max_value=1e7, allow_nan=False, allow_infinity=False)
maybe = st.none() | prices


@given(
    price=prices,
    prev=maybe,
    volume=st.none() | st.integers(0, 10**12),
    currency=st.sampled_from([None, "USD", "GBp", "ZAc", "EUR"]),
    seconds=st.integers(0, 10**9),
)
def test_a_quote_survives_its_wire_form(price, prev, volume, currency, seconds) -> None:
    at = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    q = _quote("VOD.L", price, at, previous_close=prev, volume=volume, currency=currency)
    q = q.completed()
    assert lq.decode(lq.encode(q)) == q


def test_change_is_derived_from_the_previous_close_only_when_missing() -> None:
    q = _quote(price=110.0, previous_close=100.0).completed()
    assert q.change == pytest.approx(10.0) and q.change_pct == pytest.approx(10.0)
    given_by_provider = _quote(price=110.0, previous_close=100.0, change=9.5, change_pct=9.5)
    assert given_by_provider.completed().change == 9.5


def test_pence_prices_keep_their_unit_and_the_market_cap_is_in_pounds() -> None:
    q = _quote("OCDO.L", 308.8, currency="GBp", market_cap=2_554_603_520)
    assert q.currency == "GBp" and q.market_cap_currency == "GBP"
    assert lq.to_dict(q)["market_cap_currency"] == "GBP"


def test_bad_quotes_are_refused() -> None:
    with pytest.raises(ValueError):
        _quote(price=0.0)
    with pytest.raises(ValueError):
        lq.LiveQuote("X", 1.0, datetime(2025, 1, 1), "yahoo")  # naive time
    with pytest.raises(ValueError):
        lq.from_dict({"symbol": "X"})
    with pytest.raises(ValueError):
        lq.decode_snapshot(b'{"tier": 1}')


def test_a_snapshot_keeps_the_last_quote_of_a_member_the_refresh_missed() -> None:
    old = lq.Snapshot(1, T0, (_quote("AAPL", 1.0), _quote("MSFT", 2.0), _quote("GONE", 3.0)))
    later = T0 + timedelta(minutes=5)
    new = lq.merge_snapshot(old, [_quote("AAPL", 1.5, later)], 1, later, ["AAPL", "MSFT"])
    got = {q.symbol: q.price for q in new.quotes}
    assert got == {"AAPL": 1.5, "MSFT": 2.0}  # GONE left the tier
    # an older quote never replaces a newer one
    again = lq.merge_snapshot(new, [_quote("AAPL", 9.9, T0)], 1, later, ["AAPL"])
    assert again.by_symbol()["AAPL"].price == 1.5
    assert lq.decode_snapshot(lq.encode_snapshot(again)) == again


def test_staleness_while_open_is_age_and_while_closed_is_the_last_close() -> None:
    q = _quote(at=T0)
    ten = timedelta(minutes=10)
    assert not lq.is_stale(q, T0 + timedelta(minutes=9), market_open=True, max_age=ten)
    assert lq.is_stale(q, T0 + timedelta(minutes=11), market_open=True, max_age=ten)
    close = datetime(2025, 11, 26, 21, 0, tzinfo=UTC)
    at_close = _quote(at=close - timedelta(seconds=30))
    assert not lq.is_stale(at_close, close + timedelta(days=2), market_open=False, max_age=ten,
                           last_close=close)  # fmt: skip
    assert lq.is_stale(q, close + timedelta(hours=1), market_open=False, max_age=ten,
                       last_close=close)  # fmt: skip


def test_movers_rank_by_change_and_dollar_volume() -> None:
    moves = [
        lq.Move("A", 10.0, 1.0, 10.0, 1_000, "2025-11-26"),
        lq.Move("B", 100.0, -5.0, -5.0, 500, "2025-11-26"),
        lq.Move("C", 1.0, 0.5, 50.0, 100_000, "2025-11-26"),  # penny: most shares, not most $
        lq.Move("D", 50.0, -10.0, -20.0, 10_000, "2025-11-26"),
    ]
    ranked = lq.rank_movers(moves, 2)
    assert [m.symbol for m in ranked["gainers"]] == ["C", "A"]
    assert [m.symbol for m in ranked["losers"]] == ["D", "B"]
    assert [m.symbol for m in ranked["most_active"]] == ["D", "C"]  # $500k, $100k
    with pytest.raises(ValueError):
        lq.rank_movers(moves, 0)


class _Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return (self.at - T0).total_seconds()


def test_the_book_reads_the_cache_then_the_snapshot_after_expiry(tmp_path) -> None:
    clock = _Clock(T0 + timedelta(minutes=1))
    cache = MemoryCache(clock=clock.monotonic)
    derived = LocalObjectStore(tmp_path, "derived")
    book = QuoteBook(cache, derived, clock, max_age=timedelta(minutes=10))
    fresh = _quote("AAPL", 201.0, T0)
    cache.set(lq.cache_key("AAPL"), lq.encode(fresh), ttl_seconds=120)
    derived.write(
        lq.snapshot_name(1), lq.encode_snapshot(lq.Snapshot(1, T0, (_quote("AAPL", 199.0),)))
    )
    got = book.get(["AAPL", "NOPE"])
    assert set(got) == {"AAPL"}
    assert got["AAPL"].served_from == "cache" and got["AAPL"].quote.price == 201.0
    assert not got["AAPL"].stale and got["AAPL"].age_seconds == 60.0
    clock.at = T0 + timedelta(minutes=15)  # the cache entry expired; the snapshot answers
    got = book.get(["AAPL"])
    assert got["AAPL"].served_from == "snapshot" and got["AAPL"].quote.price == 199.0
    assert got["AAPL"].stale  # 15 minutes old while New York is open
    assert got["AAPL"].to_json()["as_of"] == "2025-11-26T15:00:00Z"


def test_last_close_over_a_holiday() -> None:
    friday_morning = datetime(2025, 11, 28, 13, 0, tzinfo=UTC)  # before the early-close session
    status = market.status("XNYS", friday_morning)
    assert last_close(status, friday_morning) == datetime(2025, 11, 26, 21, 0, tzinfo=UTC)
    after_early = datetime(2025, 11, 28, 19, 0, tzinfo=UTC)  # 14:00 New York: closed early at 13:00
    status = market.status("XNYS", after_early)
    assert last_close(status, after_early) == datetime(2025, 11, 28, 18, 0, tzinfo=UTC)
