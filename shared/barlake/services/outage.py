"""Outage sense: many known symbols "not found" at once is the provider failing, not delistings.

Yahoo answers a client it blocks with "No data found, symbol may be delisted" (HTTP 404) or an
empty answer for every ticker (yfinance #2276, #2319, #2052, #2501). Taken at its word, that
records most of the lake as not-found (permanent) and calls the run complete with every symbol
stale. So before any answer is recorded, the ingest asks `judge`: when at least `share` of the
batch's previously active symbols (those with stored bars; at least `min_symbols` of them)
answered not-found / no-data, every not-found / no-data answer of the batch becomes OUTAGE —
retryable: the batch is redelivered with backoff (Pub/Sub's retry policy; the in-process bus
retries it), nothing is written, the registry is untouched and the run stays incomplete until
the provider answers again. One structured log line per batch (outcome "provider_outage") feeds
the log-based metric and its alert (infra/monitoring.tf).

Judged per batch (one message, one instance): a batch is the unit that is retried, so it is
also the unit that is judged. The quote path gives an earlier signal: when the quotes are
missing for that share of the known symbols, the outage is declared before any chart request
is spent on it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from barlake.ports import ErrorKind, FetchResult, ProviderError

log = logging.getLogger(__name__)

GONE = frozenset({ErrorKind.NOT_FOUND, ErrorKind.NO_DATA})


@dataclass(frozen=True)
class OutageRule:
    share: float = 0.5
    min_symbols: int = 5

    def holds(self, gone: int, known: int) -> bool:
        return known >= self.min_symbols and gone >= self.share * known


@dataclass(frozen=True)
class Outage:
    gone: int
    known: int
    signal: str  # "quotes" or "charts"

    @property
    def error(self) -> ProviderError:
        return ProviderError(
            ErrorKind.OUTAGE,
            f"provider outage: {self.gone} of {self.known} previously active symbols answered "
            f"not found / no data at once ({self.signal}); retried later, none marked delisted",
        )


def judge(
    results: Mapping[str, FetchResult], known: Collection[str], rule: OutageRule
) -> Outage | None:
    """An outage when `rule` holds over the known symbols' answers, else None."""
    asked = [s for s in known if s in results]
    gone = [s for s in asked if (err := results[s].error) is not None and err.kind in GONE]
    return Outage(len(gone), len(asked), "charts") if rule.holds(len(gone), len(asked)) else None


def judge_quotes(missing: Collection[str], asked: int, rule: OutageRule) -> Outage | None:
    """An outage when quotes are missing for `rule`'s share of the known symbols asked."""
    return Outage(len(missing), asked, "quotes") if rule.holds(len(missing), asked) else None


def apply(
    results: Mapping[str, FetchResult], outage: Outage, run_id: str, batch_id: str
) -> dict[str, FetchResult]:
    """Every not-found / no-data answer becomes the outage (retryable); log it once."""
    error = outage.error
    marked = {
        s: FetchResult(s, error=error) if r.error is not None and r.error.kind in GONE else r
        for s, r in results.items()
    }
    log.error(
        "ingest %s: %s",
        batch_id,
        error.message,
        extra={
            "fields": {
                "function": "ingest",
                "outcome": "provider_outage",
                "run_id": run_id,
                "batch_id": batch_id,
                "gone": outage.gone,
                "known": outage.known,
                "signal": outage.signal,
            }
        },
    )
    return marked
