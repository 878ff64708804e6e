"""Ingest one batch: fetch → validate → merge → conditional write, per symbol.

The rules that keep the lake right when the cloud retries and races:
- Incremental fetches start `overlap_sessions` sessions before the stored tail, so every fetch
  re-reads days we already hold and can notice that the provider restated them.
- A restatement that reaches beyond the overlap (split, dividend, unexplained price change)
  triggers a refetch from the first stored day and replaces the stored history; the kind and
  the evidence are recorded. A volume revision only touches the days it names, which the
  overlap already replaces.
- The write is conditional on the generation that was read (0 = create only). On conflict the
  object is re-read and the same fetched rows are merged again — nothing another writer added is
  lost — then the write is retried.
- A merge that would not change the content is not written: a duplicate delivery makes no new
  generation and so no downstream event.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from barlake.core.calendar import calendar_for
from barlake.core.codec import decode_daily, encode_daily
from barlake.core.layout import daily_name
from barlake.core.merge import (
    Restatement,
    bars_equal,
    classify_overlap,
    merge_actions,
    merge_bars,
    replace_history,
)
from barlake.core.schema import SCHEMA_VERSION, empty_actions, empty_bars
from barlake.core.validate import Validated, validate
from barlake.messages import IngestBatch
from barlake.ports import (
    BatchRecord,
    ErrorKind,
    FetchResult,
    ObjectStore,
    PreconditionFailed,
    Provider,
    ProviderError,
    QuarantineRecord,
    RestatementRecord,
    StateStore,
    SymbolOutcome,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# The latest calendar date anywhere on Earth is UTC+14: a bar dated that day is not "future".
_EARLIEST_TZ_AHEAD = timedelta(hours=14)


class WriteConflictError(RuntimeError):
    """Gave up after repeated generation conflicts (transient: the message is retried)."""


@dataclass(frozen=True)
class Stored:
    generation: int
    bars: pa.Table
    actions: pa.Table


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class IngestService:
    raw: ObjectStore
    state: StateStore
    provider: Provider
    clock: Clock = utc_now
    overlap_sessions: int = 5
    default_start: date | None = None
    max_write_attempts: int = 8
    on_outcome: Callable[[SymbolOutcome], None] | None = None

    # ------------------------------------------------------------------ storage
    def load(self, symbol: str) -> Stored | None:
        obj = self.raw.read(daily_name(symbol))
        if obj is None:
            return None
        bars, actions = decode_daily(obj.data)
        return Stored(obj.info.generation, bars, actions)

    # ------------------------------------------------------------------ the batch
    def handle(self, batch: IngestBatch) -> BatchRecord:
        now = self.clock()
        stored = {s: self.load(s) for s in batch.symbols}
        starts = {s: self._fetch_start(s, stored[s], batch) for s in batch.symbols}
        groups: dict[date | None, list[str]] = defaultdict(list)
        for symbol in batch.symbols:
            groups[starts[symbol]].append(symbol)
        fetched: dict[str, FetchResult] = {}
        for start, symbols in groups.items():
            fetched.update(self._fetch(symbols, start, batch.end))

        # First pass: validate and classify; collect the symbols whose history was restated.
        plans: dict[str, _Plan] = {}
        refetch: dict[date | None, list[str]] = defaultdict(list)
        for symbol in batch.symbols:
            plan = self._plan(symbol, stored[symbol], fetched[symbol], now)
            plans[symbol] = plan
            if plan.restatement is not None and plan.restatement.needs_full_refetch:
                base = stored[symbol]
                first = base.bars.column("date")[0].as_py() if base and base.bars.num_rows else None
                start = (
                    min(d for d in (first, batch.start) if d) if (first or batch.start) else None
                )
                refetch[start].append(symbol)
        for start, symbols in refetch.items():
            for symbol, full in self._fetch(symbols, start, batch.end).items():
                plans[symbol].attach_full_history(full, self._validate(symbol, full, now))

        outcomes = []
        for symbol in batch.symbols:
            outcome = self._commit(symbol, plans[symbol], stored[symbol], batch.run_id, now)
            outcomes.append(outcome)
            if self.on_outcome is not None:
                self.on_outcome(outcome)
        record = BatchRecord(batch.run_id, batch.batch_id, now, tuple(outcomes))
        self.state.record_batch(record)
        return record

    def _fetch_start(self, symbol: str, stored: Stored | None, batch: IngestBatch) -> date | None:
        if batch.full or stored is None or stored.bars.num_rows == 0:
            return batch.start or self.default_start
        first = stored.bars.column("date")[0].as_py()
        last = stored.bars.column("date")[-1].as_py()
        if batch.start is not None and batch.start < first:
            return batch.start  # a backfill reaching further back than what we hold
        return calendar_for(symbol).session_offset(last, -self.overlap_sessions)

    def _fetch(
        self, symbols: Sequence[str], start: date | None, end: date | None
    ) -> dict[str, FetchResult]:
        try:
            results = self.provider.fetch(list(symbols), start, end)
        except Exception as exc:  # a provider bug must not lose the batch's other records
            log.exception("provider %s failed", self.provider.name)
            err = ProviderError(ErrorKind.TRANSIENT, f"provider error: {exc}")
            return {s: FetchResult(s, error=err) for s in symbols}
        missing = ProviderError(ErrorKind.TRANSIENT, "provider returned no answer for the symbol")
        return {s: results.get(s) or FetchResult(s, error=missing) for s in symbols}

    def _validate(self, symbol: str, result: FetchResult, now: datetime) -> Validated | None:
        if result.error is not None or result.bars is None:
            return None
        today = (now + _EARLIEST_TZ_AHEAD).date()
        return validate(result.bars, calendar=calendar_for(symbol), today=today, as_of=result.as_of)

    def _plan(
        self, symbol: str, stored: Stored | None, result: FetchResult, now: datetime
    ) -> _Plan:
        checked = self._validate(symbol, result, now)
        restatement = None
        if checked is not None and stored is not None and stored.bars.num_rows:
            restatement = classify_overlap(stored.bars, checked.good)
        return _Plan(result, checked, restatement)

    # ------------------------------------------------------------------ the write
    def _commit(
        self, symbol: str, plan: _Plan, base: Stored | None, run_id: str, now: datetime
    ) -> SymbolOutcome:
        error = plan.error
        if error is not None:
            return SymbolOutcome(symbol, "failed", error_kind=error.kind.value, error=error.message)
        assert plan.checked is not None
        quarantined = plan.quarantined_rows()
        if quarantined:
            self.state.add_quarantine(
                [
                    QuarantineRecord(symbol, r["date"], r["reason"], _jsonable(r), run_id)
                    for r in quarantined
                ]
            )
        name = daily_name(symbol)
        for attempt in range(self.max_write_attempts):
            if attempt:
                base = self.load(symbol)  # lost a race: merge into what the winner wrote
            base_bars = base.bars if base else empty_bars()
            base_actions = base.actions if base else empty_actions()
            bars, actions = plan.apply(base_bars, base_actions)
            provisional = plan.checked.provisional.num_rows
            if base is not None and bars_equal(bars, base_bars) and actions.equals(base_actions):
                status = "unchanged"
                return SymbolOutcome(
                    symbol,
                    status,
                    rows_quarantined=len(quarantined),
                    provisional_skipped=provisional,
                    generation=base.generation,
                )
            if bars.num_rows == 0:
                return SymbolOutcome(
                    symbol,
                    "unchanged",
                    rows_quarantined=len(quarantined),
                    provisional_skipped=provisional,
                )
            try:
                info = self.raw.write(
                    name,
                    encode_daily(bars, actions),
                    if_generation_match=base.generation if base else 0,
                    metadata=_object_metadata(bars, self.provider.name, run_id),
                )
            except PreconditionFailed:
                log.info("%s: generation conflict, re-reading and merging again", symbol)
                continue
            restatement = plan.restatement
            if restatement is not None:
                self.state.record_restatement(
                    RestatementRecord(symbol, now, restatement.kinds, restatement.evidence, run_id)
                )
            return SymbolOutcome(
                symbol,
                "restated" if restatement is not None else "ok",
                rows_written=bars.num_rows,
                rows_new=bars.num_rows - base_bars.num_rows,
                rows_quarantined=len(quarantined),
                provisional_skipped=provisional,
                generation=info.generation,
                restatement=restatement.to_dict() if restatement else None,
            )
        raise WriteConflictError(
            f"{symbol}: {self.max_write_attempts} generation conflicts in a row"
        )


@dataclass
class _Plan:
    """What the fetched rows will do to whatever is stored when the write happens."""

    result: FetchResult
    checked: Validated | None
    restatement: Restatement | None
    full: FetchResult | None = None
    full_checked: Validated | None = None

    def attach_full_history(self, full: FetchResult, checked: Validated | None) -> None:
        self.full, self.full_checked = full, checked

    @property
    def error(self) -> ProviderError | None:
        if self.result.error is not None:
            return self.result.error
        if self.restatement is not None and self.restatement.needs_full_refetch:
            if self.full is None:
                return ProviderError(
                    ErrorKind.TRANSIENT, "restatement found; full history not fetched"
                )
            if self.full.error is not None:
                return ProviderError(
                    self.full.error.kind,
                    f"restatement {'+'.join(self.restatement.kinds)} found; "
                    f"full history refetch failed: {self.full.error.message}",
                )
        return None

    def quarantined_rows(self) -> list[dict[str, Any]]:
        tables = [v.quarantined for v in (self.checked, self.full_checked) if v is not None]
        return [row for t in tables for row in t.to_pylist()]

    def apply(self, bars: pa.Table, actions: pa.Table) -> tuple[pa.Table, pa.Table]:
        if self.full_checked is not None and self.full is not None:
            new_bars = replace_history(bars, self.full_checked.good)
            last = self.full_checked.good.column("date")[-1].as_py() if new_bars.num_rows else None
            later = [a for a in actions.to_pylist() if last is None or a["date"] > last]
            base_actions = pa.Table.from_pylist(later, schema=actions.schema)
            return new_bars, merge_actions(base_actions, self.full.actions or empty_actions())
        assert self.checked is not None
        return (
            merge_bars(bars, self.checked.good),
            merge_actions(actions, self.result.actions or empty_actions()),
        )


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in row.items()}


def _object_metadata(bars: pa.Table, source: str, run_id: str) -> dict[str, str]:
    return {
        "schema_version": str(SCHEMA_VERSION),
        "source": source,
        "rows": str(bars.num_rows),
        "first_date": bars.column("date")[0].as_py().isoformat(),
        "last_date": bars.column("date")[-1].as_py().isoformat(),
        "run_id": run_id,
    }
