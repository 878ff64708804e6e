"""The daily update's cheap path: quotes first, chart requests only where needed.

A daily run over 10,000 symbols at one chart request each is 10,000 requests: three hours at
Yahoo's ~60 a minute. Yahoo's quote endpoint answers 100 symbols per request, and for most
symbols on most days the quote is exactly the next daily bar (barlake.core.quotes says when).
So for every stored symbol of an ordinary incremental batch, the ingest asks the provider for
quotes once, takes the bars the quotes give, and sends chart requests only for the rest (new
symbols, gaps, splits, disagreements, quotes missing). A provider without `quotes`, or a quote
request that fails, simply means chart requests for all: the cheap path never fails a symbol.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from barlake.core.calendar import calendar_for
from barlake.core.quotes import decide
from barlake.core.schema import empty_actions
from barlake.ports import FetchResult

log = logging.getLogger(__name__)


@dataclass
class QuoteAnswers:
    results: dict[str, FetchResult] = field(default_factory=dict)  # answered by a quote
    chart: dict[str, str] = field(default_factory=dict)  # symbol → why it needs the chart
    missing: set[str] = field(default_factory=set)  # asked, and the provider had no quote

    @property
    def asked(self) -> int:
        return len(self.results) + len(self.chart)


def from_quotes(provider: Any, stored_bars: Mapping[str, Any]) -> QuoteAnswers:
    """Bars for the symbols (symbol → stored bars table) that a quote answers."""
    answers = QuoteAnswers()
    quotes_of = getattr(provider, "quotes", None)
    if quotes_of is None or not stored_bars:
        return answers
    try:
        quotes = quotes_of(list(stored_bars))
    except Exception as exc:  # the chart path remains: log and let every symbol take it
        log.warning("quotes failed (%s: %s); chart requests for all", type(exc).__name__, exc)
        answers.chart = dict.fromkeys(stored_bars, "quote request failed")
        return answers
    for symbol, bars in stored_bars.items():
        quote = quotes.get(symbol)
        if quote is None:
            answers.missing.add(symbol)
            answers.chart[symbol] = "no quote"
            continue
        decision = decide(quote, bars, calendar_for(symbol))
        if decision.bars is None:
            answers.chart[symbol] = decision.reason
            continue
        answers.results[symbol] = FetchResult(
            symbol, bars=decision.bars, actions=empty_actions(), as_of=quote.market_time
        )
    return answers
