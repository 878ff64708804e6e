"""The deep audit: re-verify whole histories, a rolling slice of the universe at a time.

The daily ingest compares only the last `BARLAKE_OVERLAP_SESSIONS` sessions with the provider,
so a restatement older than that (a split adjusted late, a close revised 300 sessions back, a
volume revised 20 back, a session restored days later) is never seen by it. An audit is a mode
of ingest, not a second pipeline: an audit run is dispatched like any run (kind "audit", in the
run ledger, followed with `barlake status`), and its batches carry `audit=True`, which makes the
ingest fetch each symbol's full history, compare it bar for bar (core/history.diff_history) and
heal with the same rules as any restatement (never shrinking, pending unexplained revisions,
refilling gaps the provider now fills). Each symbol's AuditRecord keeps when it was verified and
what differed.

Scheduling: a Cloud Scheduler job publishes an `AuditTick` (message kind "audit") on the
ingest-batches topic once a day; the ingest function hands it to `AuditService.tick`, which picks
the ceil(n / BARLAKE_AUDIT_PERIOD_DAYS) symbols verified longest ago (never-verified first), so
that every symbol is fully checked at least every BARLAKE_AUDIT_PERIOD_DAYS days, and dispatches
them as that day's audit run (`audit-YYYY-MM-DD`: a repeated tick is the same run).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from barlake.core.profile import audit_summary
from barlake.messages import AuditTick, IngestRequest
from barlake.ports import AuditRecord, RunRecord, StateStore
from barlake.services.dispatch import DEFAULT_UNIVERSE, DispatchService

_NEVER = datetime.min.replace(tzinfo=UTC)


def audit_slice(
    symbols: Sequence[str], records: Mapping[str, AuditRecord], period_days: int
) -> list[str]:
    """The symbols to verify today: ceil(n / period_days) of them, oldest verification first
    (never verified before any verified one; ties by symbol). Verifying that many a day checks
    every symbol within `period_days` days."""
    if not symbols:
        return []
    count = math.ceil(len(symbols) / max(1, period_days))

    def key(symbol: str) -> tuple[datetime, str]:
        record = records.get(symbol)
        return (record.verified_at if record and record.verified_at else _NEVER, symbol)

    return sorted(symbols, key=key)[:count]


@dataclass
class AuditService:
    state: StateStore
    dispatch: DispatchService
    clock: Callable[[], datetime]
    period_days: int = 7

    def tick(self, tick: AuditTick, published: datetime | None = None) -> RunRecord | None:
        """Dispatch today's slice as the run `audit-<UTC day of the tick>`; None when the
        universe is empty. A redelivered tick finds the run and republishes only its
        unfinished batches (DispatchService)."""
        universe = tick.universe or DEFAULT_UNIVERSE
        day = (published or self.clock()).astimezone(UTC).date()
        run_id = f"audit-{day.isoformat()}" + (f"-{universe}" if tick.universe else "")
        if self.state.get_run(run_id) is None:
            symbols = [r.symbol for r in self.state.list_symbols(universe)]
            chosen = audit_slice(symbols, self.state.get_audits(symbols), self.period_days)
        else:
            chosen = []  # the run exists: its batches are fixed, dispatch republishes them
        if not chosen and self.state.get_run(run_id) is None:
            return None
        request = IngestRequest(
            kind="audit", run_id=run_id, symbols=tuple(chosen), universe=universe, full=True
        )
        return self.dispatch.handle(request, published)


def audit_request(symbols: Sequence[str], run_id: str) -> IngestRequest:
    """A manual audit of these symbols (`barlake audit`): an audit run like the scheduled one."""
    return IngestRequest(kind="audit", run_id=run_id, symbols=tuple(symbols), full=True)


def annotate_profile(state: StateStore, record: AuditRecord) -> None:
    """Refresh the audit fields of the symbol's stored profile (the one `barlake status`, the
    inventory and `barlake show --profile` read) after an audit that may have written nothing:
    a verification that changed no bar makes no new object, hence no profile rebuild."""
    profile: Mapping[str, Any] | None = state.get_profile(record.symbol)
    if profile is None:
        return
    state.put_profile(record.symbol, {**profile, **audit_summary(record.to_json())})
