"""Ingest one batch: fetch → validate → merge → conditional write, per symbol.

The rules that keep the lake right when the cloud retries and races:
- Incremental fetches start `overlap_sessions` sessions before the stored tail, so every fetch
  re-reads days we already hold and can notice that the provider restated them.
- A restatement that reaches beyond the overlap (split, dividend, unexplained price change)
  triggers a refetch from the first stored day and replaces the stored history; the kind and
  the evidence are recorded. A volume revision only touches the days it names, which the
  overlap already replaces.
- The write is conditional on the generation that was read (0 = create only). On conflict the
  object is re-read and, unless the winner restated the history meanwhile (then the symbol fails
  as retryable and is fetched again), the same fetched rows are merged again — nothing another
  writer added is lost — then the write is retried.
- A merge that would not change the content is not written: a duplicate delivery makes no new
  generation and so no downstream event.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
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
    TransientError,
)
from barlake.services import outage, quote_path
from barlake.services.outage import OutageRule

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# The latest calendar date anywhere on Earth is UTC+14: a bar dated that day is not "future".
_EARLIEST_TZ_AHEAD = timedelta(hours=14)


class WriteConflictError(TransientError):
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
    # Request budget and outage sense (issue #11): services/quote_path.py, services/outage.py
    use_quotes: bool = False
    outage_rule: OutageRule = field(default_factory=OutageRule)
    lifecycle: Any = None  # services/lifecycle.py: not-found evidence → suspect → delisted

    # ------------------------------------------------------------------ storage
    def load(self, symbol: str) -> Stored | None:
        obj = self.raw.read(daily_name(symbol))
        if obj is None:
            return None
        bars, actions = decode_daily(obj.data)
        return Stored(obj.info.generation, bars, actions)

    # ------------------------------------------------------------------ the batch
    def handle(self, batch: IngestBatch) -> BatchRecord:
        """Ingest every symbol of the batch and record the outcomes.

        One symbol's trouble never sinks the others: a transient failure (a lost race, a
        provider outage) becomes a retryable `failed` outcome, anything else a permanent one.
        The record is combined with any earlier delivery's, so a redelivery never erases what
        an earlier attempt achieved. Callers redeliver while `record` has retryable outcomes.
        """
        now = self.clock()
        outcomes: dict[str, SymbolOutcome] = {}
        stored: dict[str, Stored | None] = {}
        windows: dict[str, tuple[date | None, date | None]] = {}
        previous = self.state.get_batch(batch.run_id, batch.batch_id)
        done = {o.symbol for o in previous.outcomes if not o.retryable} if previous else set()
        todo = [s for s in batch.symbols if s not in done]  # a redelivery redoes only failures
        for symbol in todo:
            with self._guard(symbol, outcomes, "reading the stored object"):
                stored[symbol] = self.load(symbol)
            if symbol not in outcomes:
                with self._guard(symbol, outcomes, "planning the fetch window"):
                    windows[symbol] = self._window(symbol, stored[symbol], batch)
        fetched = self._fetch_first(windows, stored, batch)

        plans: dict[str, _Plan] = {}
        refetch: dict[str, tuple[date | None, date | None]] = {}
        for symbol, result in fetched.items():
            with self._guard(symbol, outcomes, "validating"):
                plan = plans[symbol] = self._plan(symbol, stored[symbol], result, now)
                if plan.restatement is not None and plan.restatement.needs_full_refetch:
                    window = (self._history_start(stored[symbol], batch), None)
                    if window == windows[symbol]:  # the first fetch was already the full history
                        plan.attach_full_history(result, plan.checked)
                    else:
                        refetch[symbol] = window
        for symbol, full in self._fetch_windows(refetch).items():
            with self._guard(symbol, outcomes, "validating the full history"):
                plans[symbol].attach_full_history(full, self._validate(symbol, full, now))

        for symbol, plan in plans.items():
            if symbol in outcomes:
                continue
            with self._guard(symbol, outcomes, "writing"):
                outcomes[symbol] = self._commit(symbol, plan, stored[symbol], batch.run_id, now)
        record = BatchRecord(batch.run_id, batch.batch_id, now, tuple(outcomes[s] for s in todo))
        if self.on_outcome is not None:
            for outcome in record.outcomes:
                self.on_outcome(outcome)
        if self.lifecycle is not None:
            self.lifecycle.observe(record.outcomes, now.date(), batch.run_id)
        return self.state.update_batch(
            batch.run_id, batch.batch_id, lambda old: combine_outcomes(old, record)
        )

    @contextmanager
    def _guard(self, symbol: str, outcomes: dict[str, SymbolOutcome], step: str) -> Iterator[None]:
        """Turn one symbol's exception into that symbol's failed outcome."""
        try:
            yield
        except ValueError as exc:
            # Deterministic: a corrupt stored object (Arrow's errors are ValueErrors), a window
            # outside the calendar. Retrying cannot help: record it and move on.
            log.exception("%s: failed while %s", symbol, step)
            outcomes[symbol] = SymbolOutcome(
                symbol, "failed", error_kind="invalid", error=f"{step}: {type(exc).__name__}: {exc}"
            )
        except Exception as exc:
            # A lost race, a full disk, a locked database, a storage 5xx: retryable, and the
            # retry policy (dead-letter topic) bounds how long.
            log.warning("%s: transient failure while %s: %s", symbol, step, exc)
            outcomes[symbol] = SymbolOutcome(
                symbol,
                "failed",
                error_kind=ErrorKind.TRANSIENT.value,
                error=f"{step}: {type(exc).__name__}: {exc}",
            )

    def _window(
        self, symbol: str, stored: Stored | None, batch: IngestBatch
    ) -> tuple[date | None, date | None]:
        """What to fetch. For a stored symbol the window always covers the stored tail minus
        the overlap and runs to today (or past the tail), whatever start/end/full the request
        gave: every fetch can then notice a restatement before its rows are merged, and no
        fetched row lands beside history at another price scale."""
        wanted = (
            batch.start if batch.start is not None else (self.default_start if batch.full else None)
        )
        if stored is None or stored.bars.num_rows == 0:
            return (wanted if batch.full else batch.start or self.default_start), batch.end
        last = stored.bars.column("date")[-1].as_py()
        overlap = calendar_for(symbol).session_offset(last, -self.overlap_sessions)
        if batch.full and wanted is None:
            start = None  # the whole history the provider has
        else:
            start = overlap if wanted is None else min(wanted, overlap)
        end = batch.end if batch.end is not None and batch.end > last else None
        return start, end

    def _history_start(self, stored: Stored | None, batch: IngestBatch) -> date | None:
        """Where a full refetch after a restatement starts: the first stored day (or the
        request's start, if earlier; a --full request's own start, None being all the history
        the provider has). It always runs to today: replacing only part of the history would
        leave days at two price scales."""
        first = stored.bars.column("date")[0].as_py() if stored and stored.bars.num_rows else None
        wanted = batch.start
        if batch.full:
            wanted = batch.start if batch.start is not None else self.default_start
            if wanted is None:
                return None
        candidates = [d for d in (first, wanted) if d is not None]
        return min(candidates) if candidates else None

    def _fetch_first(
        self,
        windows: dict[str, tuple[date | None, date | None]],
        stored: dict[str, Stored | None],
        batch: IngestBatch,
    ) -> dict[str, FetchResult]:
        """The batch's first fetch: quotes where they suffice (an ordinary incremental batch),
        charts for the rest; then the outage rule over the previously active symbols."""
        known = [s for s in windows if (st := stored.get(s)) is not None and st.bars.num_rows]
        fetched: dict[str, FetchResult] = {}
        if self.use_quotes and batch.start is None and batch.end is None and not batch.full:
            tails = {s: st.bars for s in known if (st := stored[s]) is not None}
            answers = quote_path.from_quotes(self.provider, tails)
            fetched.update(answers.results)
            quiet = outage.judge_quotes(answers.missing, answers.asked, self.outage_rule)
            if quiet is not None:  # no chart request is spent on a provider that blocks us
                held = {s: FetchResult(s, error=quiet.error) for s in windows}
                return outage.apply(held, quiet, batch.run_id, batch.batch_id)
        rest = {s: w for s, w in windows.items() if s not in fetched}
        fetched.update(self._fetch_windows(rest))
        found = outage.judge(fetched, known, self.outage_rule)
        if found is not None:
            fetched = outage.apply(fetched, found, batch.run_id, batch.batch_id)
        return fetched

    def _fetch_windows(
        self, windows: dict[str, tuple[date | None, date | None]]
    ) -> dict[str, FetchResult]:
        groups: dict[tuple[date | None, date | None], list[str]] = defaultdict(list)
        for symbol, window in windows.items():
            groups[window].append(symbol)
        fetched: dict[str, FetchResult] = {}
        for (start, end), symbols in groups.items():
            fetched.update(self._fetch(symbols, start, end))
        return fetched

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
        restatement = plan.restatement
        if restatement is not None:
            # Recorded before the write: if we die after writing, the redelivery finds the
            # object already healed and would otherwise never say why it changed.
            self.state.record_restatement(
                RestatementRecord(symbol, now, restatement.kinds, restatement.evidence, run_id)
            )
        name = daily_name(symbol)
        provisional = plan.checked.provisional.num_rows
        for attempt in range(self.max_write_attempts):
            if attempt:
                base = self.load(symbol)  # lost a race: merge into what the winner wrote
                if plan.full is None and base is not None:
                    # The winner may have restated the history our rows were checked against.
                    again = classify_overlap(base.bars, plan.checked.good)
                    if again is not None and again.needs_full_refetch:
                        raise TransientError(
                            f"history restated concurrently ({'+'.join(again.kinds)}); "
                            "refetch on retry"
                        )
            base_bars = base.bars if base else empty_bars()
            base_actions = base.actions if base else empty_actions()
            bars, actions = plan.apply(base_bars, base_actions)
            if base is not None and bars_equal(bars, base_bars) and actions.equals(base_actions):
                return SymbolOutcome(
                    symbol,
                    "unchanged",
                    rows_quarantined=len(quarantined),
                    provisional_skipped=provisional,
                    generation=base.generation,
                )
            if bars.num_rows == 0:  # a new symbol and not one storable bar
                return SymbolOutcome(
                    symbol,
                    "failed",
                    rows_quarantined=len(quarantined),
                    provisional_skipped=provisional,
                    error_kind=ErrorKind.NO_DATA.value,
                    error=f"no final, valid bar to store ({len(quarantined)} quarantined, "
                    f"{provisional} still in progress)",
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


_RANK = {"failed": 0, "unchanged": 1, "ok": 2, "restated": 2}


def combine_outcomes(previous: BatchRecord | None, new: BatchRecord) -> BatchRecord:
    """Per symbol, keep what the stronger delivery achieved: a write (ok/restated) beats
    "unchanged", which beats "failed"; on a tie the newer delivery wins. A redelivered batch
    then never turns a write into "unchanged", nor a success into a later rate-limit failure.
    """
    if previous is None:
        return new
    merged = {o.symbol: o for o in previous.outcomes}
    for o in new.outcomes:
        old = merged.get(o.symbol)
        if old is None or _RANK[o.status] >= _RANK[old.status]:
            merged[o.symbol] = o
    return BatchRecord(new.run_id, new.batch_id, new.finished_at, tuple(merged.values()))


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
            if self.full_checked is None or self.full_checked.good.num_rows == 0:
                return ProviderError(
                    ErrorKind.NO_DATA,
                    f"restatement {'+'.join(self.restatement.kinds)} found; "
                    "the full history refetched has no valid rows",
                )
        return None

    def quarantined_rows(self) -> list[dict[str, Any]]:
        """Rows refused by this run, once each (the incremental fetch and the full refetch
        after a restatement can both see the same bad row)."""
        tables = [v.quarantined for v in (self.checked, self.full_checked) if v is not None]
        # Keyed by the row's JSON: NaN compares unequal to itself, its JSON text does not.
        unique = {_row_key(row): row for t in tables for row in t.to_pylist()}
        return list(unique.values())

    def apply(self, bars: pa.Table, actions: pa.Table) -> tuple[pa.Table, pa.Table]:
        if self.full_checked is not None and self.full is not None:
            assert self.full.bars is not None and self.full.bars.num_rows
            through = max(self.full.bars.column("date").to_pylist())  # valid or not
            new_bars = replace_history(bars, self.full_checked.good, through)
            later = [a for a in actions.to_pylist() if a["date"] > through]
            base_actions = pa.Table.from_pylist(later, schema=actions.schema)
            return new_bars, merge_actions(base_actions, self.full.actions or empty_actions())
        assert self.checked is not None
        return (
            merge_bars(bars, self.checked.good),
            merge_actions(actions, self.result.actions or empty_actions()),
        )


def _row_key(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


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
