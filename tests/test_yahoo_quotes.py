"""Yahoo's v7 quote as the daily update's cheap path, on real recorded answers
(tests/fixtures/yahoo_quote/SOURCES.md): the provider parses them through the real yfinance
request path (cookie, crumb, quote), seeds yfinance's timezone cache from them, and
barlake.core.quotes decides when a quote is the next daily bar and when the chart is needed."""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from barlake.adapters.yfinance_provider import YFinanceProvider
from barlake.core.calendar import calendar_for
from barlake.core.quotes import Quote, decide
from barlake.core.validate import validate
from conftest import bars
from yahoo_offline import OfflineYahoo, _response, load_recording

QUOTES = Path(__file__).parent / "fixtures" / "yahoo_quote"


class QuoteYahoo(OfflineYahoo):
    """The offline Yahoo, answering the v7 quote endpoint with a recorded body."""

    def __init__(self, recording: Path) -> None:
        super().__init__()
        self.quote_status, self.quote_body = load_recording(recording)
        self.quote_params: list[dict[str, str]] = []

    def send(self, request: requests.PreparedRequest, **kw: Any) -> requests.Response:
        parts = urlsplit(str(request.url))
        if parts.path == "/v7/finance/quote":
            self.counts[parts.path] += 1
            self.quote_params.append(dict(parse_qsl(parts.query)))
            return _response(request, self.quote_status, self.quote_body)
        return super().send(request, **kw)


@pytest.fixture(autouse=True)
def _quiet() -> None:
    warnings.filterwarnings("ignore", module="yfinance")


def test_the_provider_reads_recorded_quotes_and_learns_their_timezones(tmp_path: Path) -> None:
    import yfinance.cache as yf_cache

    yahoo = QuoteYahoo(QUOTES / "v7_quote_AAPL_BABA.json")
    provider = YFinanceProvider(yahoo.session(), cache_dir=tmp_path / "yf")
    quotes = provider.quotes(["AAPL", "BABA", "SIX"])
    assert set(quotes) == {"AAPL", "BABA"}  # SIX: Yahoo had no quote, so none
    aapl = quotes["AAPL"]
    assert aapl.market_time == datetime(2025, 2, 14, 21, 0, tzinfo=UTC)
    assert aapl.session == date(2025, 2, 14)
    assert (aapl.open, aapl.high, aapl.low, aapl.close) == (241.07, 245.41, 241.0, 244.6)
    assert aapl.volume == 40896227 and aapl.previous_close == 241.53
    assert yahoo.counts["/v7/finance/quote"] == 1
    assert yahoo.quote_params[0]["symbols"] == "AAPL,BABA,SIX"
    assert yahoo.quote_params[0]["crumb"]  # through yfinance's cookie and crumb
    assert yf_cache.get_tz_cache().lookup("BABA") == "America/New_York"
    assert yahoo.unexpected == []


def test_an_unknown_symbol_has_no_quote(tmp_path: Path) -> None:
    yahoo = QuoteYahoo(QUOTES / "v7_quote_SIX_empty_result.json")
    provider = YFinanceProvider(yahoo.session(), cache_dir=tmp_path / "yf")
    assert provider.quotes(["SIX"]) == {}


def _aapl(tmp_path: Path) -> Quote:
    provider = YFinanceProvider(
        QuoteYahoo(QUOTES / "v7_quote_AAPL_BABA.json").session(), cache_dir=tmp_path / "yf"
    )
    return provider.quotes(["AAPL"])["AAPL"]


def test_a_quote_is_the_next_bar_only_when_it_follows_the_stored_tail(tmp_path: Path) -> None:
    quote, nyse = _aapl(tmp_path), calendar_for("AAPL")

    def stored(day: date, close: float) -> Any:
        return bars("AAPL", [(day, close, close, close, close, close, 1000)])

    taken = decide(quote, stored(date(2025, 2, 13), 241.53), nyse)
    assert taken.reason == "" and taken.bars is not None
    row = taken.bars.to_pylist()[0]
    assert row["date"] == date(2025, 2, 14)
    assert (row["open"], row["high"], row["low"], row["close"]) == (241.07, 245.41, 241.0, 244.6)
    assert row["adj_close"] == 244.6 and row["volume"] == 40896227
    # a split (or any restatement) shows as a previous close that disagrees: the chart
    split = decide(quote, stored(date(2025, 2, 13), 241.53 * 4), nyse)
    assert split.bars is None and "previous close" in split.reason
    gap = decide(quote, stored(date(2025, 2, 11), 241.53), nyse)
    assert gap.bars is None and gap.reason.startswith("gap")
    assert decide(quote, stored(date(2025, 2, 14), 244.6), nyse).bars is not None
    older = decide(quote, stored(date(2025, 2, 18), 244.6), nyse)
    assert older.bars is None and "older" in older.reason
    new = decide(quote, bars("AAPL", []), nyse)
    assert new.bars is None and new.reason == "new symbol"


def test_a_quote_taken_during_the_session_is_provisional_not_stored(tmp_path: Path) -> None:
    yahoo = QuoteYahoo(QUOTES / "v7_quote_OCDO.L.json")
    provider = YFinanceProvider(yahoo.session(), cache_dir=tmp_path / "yf")
    quote = provider.quotes(["OCDO.L"])["OCDO.L"]
    lse = calendar_for("OCDO.L")
    previous = lse.previous_session(quote.session)
    taken = decide(quote, bars("OCDO.L", [(previous, *([315.2] * 5), 10)]), lse)
    assert taken.bars is not None  # the quote fits after the stored tail …
    checked = validate(taken.bars, calendar=lse, today=quote.session, as_of=quote.market_time)
    assert checked.good.num_rows == 0 and checked.provisional.num_rows == 1  # … but is not final
