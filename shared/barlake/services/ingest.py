"""Ingest one batch: fetch → validate → merge → conditional write, per symbol.

The rules that keep the lake right when the cloud retries and races:
- Incremental fetches start `overlap_sessions` sessions before the stored tail, so every fetch
  re-reads days we already hold and can notice that the provider restated them.
- Fetched rows are screened for outliers in the stored history's context first
  (core/plausibility.py): an implausible bar is quarantined, never stored, and never passes as
  a restatement.
- A restatement that reaches beyond the overlap (split, dividend, unexplained price change)
  triggers a refetch from the first stored day, which is applied only where it covers what is
  stored (core/history.py): a suspect answer changes nothing and is retried, days it lacks are
  kept, unexplained revisions wait for confirmation; kinds and evidence are recorded. A volume
  revision only touches the days it names, which the overlap already replaces. An audit batch
  (services/audit.py) makes every fetch a full comparison.
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
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from barlake.core.adjust import unadjusted_splits
from barlake.core.calendar import calendar_for
from barlake.core.codec import decode_daily, decode_provenance, encode_daily
from barlake.core.history import (
    HistoryDiff,
    Reconciled,
    diff_history,
    inferred_splits,
    reconcile,
    suspect_reason,
)
from barlake.core.layout import daily_name
from barlake.core.merge import (
    Restatement,
    bars_equal,
    classify_overlap,
    merge_actions,
    merge_bars,
)
from barlake.core.plausibility import Screened, screen
from barlake.core.provenance import align, fallback_dates, fallback_differences, stamped
from barlake.core.schema import SCHEMA_VERSION, empty_actions, empty_bars
from barlake.core.validate import Validated, validate
from barlake.messages import IngestBatch
from barlake.ports import (
    AuditRecord,
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
from barlake.services.audit import annotate_profile
from barlake.services.derived import CorruptObjectError, decoded
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
    run_id: str | None = None  # the run that wrote this generation (object metadata)
    provenance: pa.Table | None = None  # per row: source provider, fetched at


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
        # Corrupt: never merged into nor overwritten (the symbol fails as `corrupt`; heal it
        # with `barlake repair SYMBOL`, barlake.services.repair).
        bars, actions = decoded(obj.info.name, decode_daily, obj.data)
        return Stored(
            obj.info.generation,
            bars,
            actions,
            obj.info.metadata.get("run_id"),
            decode_provenance(obj.data),
        )

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
        audits = self.state.get_audits(todo) if todo else {}
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
                plan = plans[symbol] = self._plan(
                    symbol, stored[symbol], result, now, audits.get(symbol)
                )
                if needs_full_history(plan, batch.audit):
                    window = (self._history_start(stored[symbol], batch), None)
                    asked = windows[symbol][0]  # never drop a day the first fetch brought
                    if window[0] is not None and (asked is None or asked < window[0]):
                        window = (asked, None)
                    if batch.audit or window == windows[symbol]:  # already the full history
                        plan.attach_full_history(result, plan.checked)
                    else:
                        refetch[symbol] = window
        for symbol, full in self._fetch_windows(refetch).items():
            with self._guard(symbol, outcomes, "validating the full history"):
                plans[symbol].attach_full_history(full, self._validate(symbol, full, now))
        for symbol, plan in plans.items():
            if symbol not in outcomes and plan.full_checked is not None:
                with self._guard(symbol, outcomes, "comparing the full history"):
                    plan.judge_full_history(now, batch.run_id)

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
            kind = "corrupt" if isinstance(exc, CorruptObjectError) else "invalid"
            outcomes[symbol] = SymbolOutcome(
                symbol, "failed", error_kind=kind, error=f"{step}: {type(exc).__name__}: {exc}"
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
        # A split the stored prices do not reflect yet (the provider adjusts late): reach back
        # over it, so the overlap sees the pre-split days the moment the provider rescales them.
        pending_splits = unadjusted_splits(stored.bars, stored.actions)
        if pending_splits:
            split_day = min(date.fromisoformat(str(u["date"])) for u in pending_splits)
            overlap = min(
                overlap, calendar_for(symbol).session_offset(split_day, -self.overlap_sessions)
            )
        if batch.full and wanted is None:
            start = None  # the whole history the provider has
        else:
            start = overlap if wanted is None else min(wanted, overlap)
        end = batch.end if batch.end is not None and batch.end > last else None
        provisional = self._fallback_dates(stored)
        if start is not None and provisional:  # a fallback's rows wait for the primary's
            start = min(start, provisional[0])
        return start, end

    @property
    def primary(self) -> str:
        """The provider whose rows are final (the first of a chain)."""
        return str(getattr(self.provider, "primary", self.provider.name))

    def _fallback_dates(self, stored: Stored | None) -> list[date]:
        if stored is None or stored.provenance is None:
            return []
        return fallback_dates(stored.provenance, self.primary)

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
        plain = batch.start is None and batch.end is None and not batch.full and not batch.audit
        if self.use_quotes and plain:
            # Not for a symbol whose window reaches back (a fallback's provisional rows waiting
            # for the primary, a split the stored prices do not reflect yet): charts for those.
            tails = {
                s: st.bars
                for s in known
                if (st := stored[s]) is not None
                and not self._fallback_dates(st)
                and not unadjusted_splits(st.bars, st.actions)
            }
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
        self,
        symbol: str,
        stored: Stored | None,
        result: FetchResult,
        now: datetime,
        audit: AuditRecord | None = None,
    ) -> _Plan:
        """Validate, screen for outliers against the stored history (core/plausibility.py),
        then compare the overlap: an outlier can neither pass as a restatement nor hide one."""
        checked = self._validate(symbol, result, now)
        plan = _Plan(result, checked, None, stored=stored, audit=audit)
        if checked is None:
            return plan
        base = stored.bars if stored is not None else empty_bars()
        provisional = self._fallback_dates(stored)
        from_fallback = (result.source or self.provider.name) != self.primary
        if from_fallback and stored is not None and base.num_rows:
            # A fallback's rows never restate the primary's: they only add days.
            keep = pc.invert(pc.is_in(checked.good["date"], _final_dates(stored, provisional)))
            checked = plan.checked = replace(checked, good=checked.good.filter(keep))
        actions = merge_actions(
            stored.actions if stored is not None else empty_actions(),
            result.actions or empty_actions(),
        )
        plan.screened = screen(base, checked.good, actions)
        if base.num_rows and not from_fallback:
            final = base
            if provisional:
                # The primary replaces a fallback's provisional rows: not a restatement, but
                # their differences beyond tolerance are kept as evidence.
                plan.fallback_replaced = fallback_differences(base, plan.screened.good, provisional)
                dates = pa.array(provisional, pa.date32())
                final = base.filter(pc.invert(pc.is_in(base["date"], dates)))
            if final.num_rows:
                plan.restatement = classify_overlap(
                    plan.without_stored_outliers(final), plan.screened.good
                )
        return plan

    def _record_audit(self, record: AuditRecord) -> None:
        """The symbol's audit record, and its summary in the stored profile (services/audit)."""
        self.state.put_audit(record)
        annotate_profile(self.state, record)

    # ------------------------------------------------------------------ the write
    def _commit(
        self, symbol: str, plan: _Plan, base: Stored | None, run_id: str, now: datetime
    ) -> SymbolOutcome:
        error = plan.error
        if error is not None:
            return SymbolOutcome(symbol, "failed", error_kind=error.kind.value, error=error.message)
        assert plan.checked is not None
        if plan.suspect is not None:
            # Nothing applied: the evidence is recorded and the symbol retried (history.py).
            self._record_audit(plan.audit_record(symbol, now, run_id))
            return SymbolOutcome(
                symbol,
                "failed",
                error_kind=ErrorKind.TRANSIENT.value,
                error=f"suspect answer, nothing applied: {plan.suspect['reason']}",
            )
        quarantined = plan.quarantined_rows()
        if quarantined:
            self.state.add_quarantine(
                [
                    QuarantineRecord(symbol, r["date"], r["reason"], _jsonable(r), run_id)
                    for r in quarantined
                ]
            )
        if plan.full_screened is not None:  # compare now, so the record names every kind
            plan.apply(
                base.bars if base else empty_bars(), base.actions if base else empty_actions()
            )
        restatement = plan.effective_restatement()
        if plan.fallback_replaced:
            self.state.record_restatement(
                RestatementRecord(
                    symbol,
                    now,
                    ("fallback_replaced",),
                    {"primary": self.primary, "differences": plan.fallback_replaced},
                    run_id,
                )
            )
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
                    fresh = plan.screened.good if plan.screened else plan.checked.good
                    again = classify_overlap(plan.without_stored_outliers(base.bars), fresh)
                    if again is not None and again.needs_full_refetch:
                        raise TransientError(
                            f"history restated concurrently ({'+'.join(again.kinds)}); "
                            "refetch on retry"
                        )
            base_bars = base.bars if base else empty_bars()
            base_actions = base.actions if base else empty_actions()
            bars, actions = plan.apply(base_bars, base_actions)
            if plan.full_checked is not None or (plan.audit and plan.audit.pending):
                self._record_audit(plan.audit_record(symbol, now, run_id))
            source = plan.result.source or self.provider.name
            provenance = align(
                bars, stamped(plan.written(), source, now), base.provenance if base else None
            )
            if (
                base is not None
                and bars_equal(bars, base_bars)
                and actions.equals(base_actions)
                and base.provenance is not None
                and provenance.column("source").equals(base.provenance.column("source"))
            ):
                if base.run_id == run_id:  # an earlier attempt of this batch wrote it, then died
                    return SymbolOutcome(
                        symbol,
                        "restated" if restatement is not None else "ok",
                        rows_written=bars.num_rows,
                        rows_quarantined=len(quarantined),
                        provisional_skipped=provisional,
                        generation=base.generation,
                        error="written by an earlier attempt of this run",
                        restatement=restatement.to_dict() if restatement else None,
                    )
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
                    encode_daily(bars, actions, provenance),
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


def needs_full_history(plan: _Plan, audit_mode: bool) -> bool:
    """The full history is fetched after a restatement reaching beyond the overlap, in an
    audit, and while an earlier answer waits for confirmation (a pending revision or a
    suspect answer): those can only be confirmed by a later full answer."""
    if plan.checked is None:
        return False
    if audit_mode:
        return True
    if plan.restatement is not None and plan.restatement.needs_full_refetch:
        return True
    record = plan.audit
    has_history = plan.stored is not None and plan.stored.bars.num_rows > 0
    return has_history and record is not None and bool(record.pending or record.suspect)


@dataclass
class _Plan:
    """What the fetched rows will do to whatever is stored when the write happens."""

    result: FetchResult
    checked: Validated | None
    restatement: Restatement | None
    full: FetchResult | None = None
    full_checked: Validated | None = None
    stored: Stored | None = None
    audit: AuditRecord | None = None
    screened: Screened | None = None
    full_screened: Screened | None = None
    diff: HistoryDiff | None = None
    suspect: dict[str, Any] | None = None
    reconciled: Reconciled | None = None
    purge_confirmed: bool = False
    fallback_replaced: list[dict[str, Any]] = field(default_factory=list)

    def written(self) -> pa.Table:
        """The rows this plan writes (their provenance is this fetch's): the screened full
        history when one is applied, else the screened incremental rows."""
        if self.full_screened is not None and self.full is not None:
            return self.full_screened.good
        if self.screened is not None:
            return self.screened.good
        assert self.checked is not None
        return self.checked.good

    def attach_full_history(self, full: FetchResult, checked: Validated | None) -> None:
        self.full, self.full_checked = full, checked

    # -------------------------------------------------------------- plausibility
    def without_stored_outliers(self, bars: pa.Table) -> pa.Table:
        days = self.screened.stored_outlier_days if self.screened is not None else set()
        if not days or bars.num_rows == 0:
            return bars
        keep = [d not in days for d in bars.column("date").to_pylist()]
        return bars.filter(pa.array(keep, pa.bool_()))

    def _span(self) -> tuple[date, date] | None:
        assert self.full is not None
        if self.full.bars is None or self.full.bars.num_rows == 0:
            return None
        dates = self.full.bars.column("date")
        return (pc.min(dates).as_py(), pc.max(dates).as_py())

    def judge_full_history(self, now: datetime, run_id: str) -> None:
        """Screen the full answer in its own context, compare it with the stored history and
        decide whether it may be applied at all (core/history.suspect_reason)."""
        if self.full_checked is None or self.full is None or self._span() is None:
            return
        actions = self.full.actions or empty_actions()
        self.full_screened = screen(empty_bars(), self.full_checked.good, actions)
        if self.stored is None or self.stored.bars.num_rows == 0:
            return
        if self.full_screened.good.num_rows == 0:
            return  # nothing valid at all: a no_data failure (see `error`), nothing applied
        stored = self.without_stored_outliers(self.stored.bars)
        diff = diff_history(stored, self.full_screened.good, self._span())
        record = self.audit
        confirmed: date | None = None
        if record is not None and record.purged_before is not None:
            confirmed = record.purged_before
        if record is not None and record.suspect and diff.answer_first is not None:
            # The same later start, seen again by another run (a redelivery of this batch
            # hits the same throttled answer and is not a confirmation): a genuine purge.
            same = record.suspect.get("answer_first") == _iso_day(diff.answer_first)
            if same and record.suspect.get("run_id") != run_id:
                confirmed = date.fromisoformat(str(record.suspect["answer_first"]))
        reason = suspect_reason(diff, confirmed)
        if reason is None:
            self.purge_confirmed = bool(diff.purged)
            return
        answer_first = _iso_day(diff.answer_first) if diff.answer_first is not None else None
        first_seen_at = now
        if (
            record is not None
            and record.suspect
            and record.suspect.get("answer_first") == answer_first
        ):
            first_seen_at = datetime.fromisoformat(str(record.suspect["first_seen"]))
        self.suspect = {
            "reason": reason,
            "at": now.isoformat(),
            "first_seen": first_seen_at.isoformat(),
            "answer_first": answer_first,
            "answer_rows": self.full.bars.num_rows if self.full.bars is not None else 0,
            "stored_rows": self.stored.bars.num_rows,
            "missing": len(diff.missing),
            "purged": len(diff.purged),
        }

    def audit_record(self, symbol: str, now: datetime, run_id: str) -> AuditRecord:
        """The symbol's audit record after this plan (suspect, or compared and applied)."""
        old = self.audit or AuditRecord(symbol)
        if self.suspect is not None:
            return replace(old, suspect={**self.suspect, "run_id": run_id})
        if self.reconciled is None or self.diff is None:
            return old
        purged_before = old.purged_before
        if self.diff.purged and self.diff.answer_first is not None:
            purged_before = date.fromisoformat(_iso_day(self.diff.answer_first))
        return AuditRecord(
            symbol,
            verified_at=now,
            differences={
                "kinds": list(self.diff.kinds()),
                "evidence": self.diff.evidence(),
                "kept_days": len(self.reconciled.kept),
                "confirmed_revisions": [_iso_day(d) for d in self.reconciled.confirmed],
                "run_id": run_id,
            },
            pending=self.reconciled.pending,
            suspect=None,
            purged_before=purged_before,
        )

    @property
    def error(self) -> ProviderError | None:
        if self.result.error is not None:
            return self.result.error
        if self.full_checked is not None or self.needs_full:
            if self.full is None:
                return ProviderError(
                    ErrorKind.TRANSIENT, "restatement found; full history not fetched"
                )
            if self.full.error is not None:
                kinds = "+".join(self.restatement.kinds) if self.restatement else "check"
                return ProviderError(
                    self.full.error.kind,
                    f"restatement {kinds} found; full history refetch failed: "
                    f"{self.full.error.message}",
                )
            good = self.full_screened.good if self.full_screened else None
            if self.full_checked is None or good is None or good.num_rows == 0:
                kinds = "+".join(self.restatement.kinds) if self.restatement else "check"
                return ProviderError(
                    ErrorKind.NO_DATA,
                    f"restatement {kinds} found; the full history refetched has no valid rows",
                )
        return None

    @property
    def needs_full(self) -> bool:
        return self.restatement is not None and self.restatement.needs_full_refetch

    def effective_restatement(self) -> Restatement | None:
        """What the run records: the full comparison's kinds when one was made, else the
        overlap's classification."""
        if self.diff is not None:
            kinds = self.diff.kinds()
            if not kinds:
                return None
            evidence = {**(self.restatement.evidence if self.restatement else {})}
            evidence.update(self.diff.evidence())
            if self.reconciled is not None and self.reconciled.pending:
                evidence["pending_revisions"] = sorted(self.reconciled.pending)[:20]
            return Restatement(kinds=kinds, evidence=evidence)
        return self.restatement

    def quarantined_rows(self) -> list[dict[str, Any]]:
        """Rows refused by this run, once each (the incremental fetch and the full refetch
        after a restatement can both see the same bad row); outliers carry their evidence."""
        tables = [v.quarantined for v in (self.checked, self.full_checked) if v is not None]
        # Keyed by the row's JSON: NaN compares unequal to itself, its JSON text does not.
        unique = {_row_key(row): row for t in tables for row in t.to_pylist()}
        for screened in (self.screened, self.full_screened):
            if screened is None:
                continue
            for row in [*screened.outliers, *screened.stored_outliers]:
                bare = {k: v for k, v in row.items() if k != "evidence"}
                unique.setdefault(_row_key(bare), row)
        return list(unique.values())

    def apply(self, bars: pa.Table, actions: pa.Table) -> tuple[pa.Table, pa.Table]:
        bars = self.without_stored_outliers(bars)
        if self.full_checked is not None and self.full is not None and self.full_screened:
            span = self._span()
            assert span is not None
            good = self.full_screened.good
            diff = diff_history(bars, good, span)
            pending = self.audit.pending if self.audit is not None else None
            rec = reconcile(bars, good, diff, pending)
            self.diff, self.reconciled = diff, rec
            first, through = span
            outside = [a for a in actions.to_pylist() if a["date"] > through or a["date"] < first]
            provider = self.full.actions or empty_actions()
            p_splits = [a for a in provider.to_pylist() if a["kind"] == "split"]
            kept_splits = [  # splits the lake knows (inferred earlier) that the provider lacks
                a
                for a in actions.to_pylist()
                if first <= a["date"] <= through
                and a["kind"] == "split"
                and not any(_same_split(a, p) for p in p_splits)
            ]
            base_actions = pa.Table.from_pylist(outside + kept_splits, schema=actions.schema)
            new_actions = merge_actions(base_actions, provider)
            inferred = inferred_splits(diff, good, new_actions)
            return rec.bars, merge_actions(new_actions, inferred)
        assert self.checked is not None
        good = self.screened.good if self.screened is not None else self.checked.good
        fetched = self.result.actions or empty_actions()
        return merge_bars(bars, good), merge_actions(_superseded_out(actions, fetched), fetched)


def _same_split(stored: dict[str, Any], provider: dict[str, Any]) -> bool:
    """Whether the provider's split action is the one a stored split stands for: within a
    week of it, or (an inferred split is dated the earliest day it can have taken effect) the
    same ratio on a later day."""
    days = (provider["date"] - stored["date"]).days
    same_ratio = abs(provider["value"] - stored["value"]) <= 1e-6 * abs(stored["value"])
    return abs(days) <= 7 or (same_ratio and days > 0)


def _superseded_out(stored: pa.Table, fetched: pa.Table) -> pa.Table:
    """The stored actions without the splits a fetched split stands for: the same ratio
    within a week. A split inferred from prices is dated the earliest day it can have taken
    effect; the provider's own event for it can arrive later, in a daily fetch, dated a day or
    two after. Kept side by side, `adjust="none"` would undo the split twice."""
    provider = [a for a in fetched.to_pylist() if a["kind"] == "split"]
    if not provider:
        return stored

    def superseded(a: dict[str, Any]) -> bool:
        return a["kind"] == "split" and any(
            abs((p["date"] - a["date"]).days) <= 7
            and abs(p["value"] - a["value"]) <= 1e-6 * abs(a["value"])
            for p in provider
        )

    keep = [not superseded(a) for a in stored.to_pylist()]
    return stored.filter(pa.array(keep, pa.bool_()))


def _iso_day(day: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=int(day))).isoformat()


def _final_dates(stored: Stored, provisional: list[date]) -> pa.Array:
    """Stored dates whose rows are final (not a fallback's provisional rows)."""
    dates = stored.bars.column("date")
    if not provisional:
        return dates
    return pc.filter(dates, pc.invert(pc.is_in(dates, pa.array(provisional, pa.date32()))))


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
