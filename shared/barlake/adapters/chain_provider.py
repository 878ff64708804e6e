"""An ordered chain of providers: `BARLAKE_PROVIDER=yahoo,tiingo`.

Per symbol, the first provider's answer stands unless it failed with a kind worth falling back
on; then the next provider is asked for the symbols still unanswered, and so on:
- rate_limited, transient, unreachable, auth (and an `outage` kind where one exists): the
  primary could not answer now, the fallback may;
- not_found: only if a fallback has bars for it (the fallback "knows" the symbol); if every
  provider says not found, the primary's own error stands;
- no_data is not fallen back on: the symbol exists and has nothing in the range.
Every answer carries `source` (the provider that gave it), which the ingest stores per row as
provenance: rows from a fallback are provisional and the primary's later answer replaces them
(core/provenance.py). `primary` names the first provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from barlake.ports import ErrorKind, FetchResult, Provider

FALLBACK_KINDS = frozenset(
    {ErrorKind.RATE_LIMITED, ErrorKind.TRANSIENT, ErrorKind.UNREACHABLE, ErrorKind.AUTH}
)


def _falls_back(result: FetchResult) -> bool:
    if result.error is None:
        return False
    kind = result.error.kind
    return kind in FALLBACK_KINDS or kind == ErrorKind.NOT_FOUND or str(kind) == "outage"


class ChainProvider:
    """A Provider that asks `providers` in order, per symbol (module docstring)."""

    def __init__(self, providers: Sequence[Provider]) -> None:
        if not providers:
            raise ValueError("a provider chain needs at least one provider")
        self.providers = list(providers)
        self.name = ",".join(p.name for p in self.providers)
        self.primary = self.providers[0].name

    def fetch(
        self, symbols: Sequence[str], start: date | None, end: date | None
    ) -> dict[str, FetchResult]:
        first, *rest = self.providers
        answers = {
            s: r if r.source else replace(r, source=first.name)
            for s, r in first.fetch(list(symbols), start, end).items()
        }
        for provider in rest:
            pending = [s for s in symbols if s not in answers or _falls_back(answers[s])]
            if not pending:
                break
            for symbol, result in provider.fetch(pending, start, end).items():
                previous = answers.get(symbol)
                if result.error is None and result.bars is not None:
                    answers[symbol] = replace(result, source=result.source or provider.name)
                elif (
                    previous is not None
                    and previous.error is not None
                    and previous.error.kind != ErrorKind.NOT_FOUND
                    and result.error is not None
                ):
                    # The primary's error stands, with what the fallback said appended (a
                    # not_found primary keeps its own words: the fallback did not know it either).
                    message = f"{previous.error.message}; then {provider.name}: "
                    message += result.error.message
                    answers[symbol] = replace(
                        previous, error=replace(previous.error, message=message[:400])
                    )
        return answers
