"""Dispatch: turn one ingest request into a run record and batches of symbols.

Idempotent under redelivery: the run id is the request's (a scheduled tick is named after its
UTC day — and, for a named universe, the universe and the UTC hour — so a redelivered tick is
one run; backfill and manual requests must carry one).
The run record is created once and fixes the batches — their ids and the symbols of each — so
a redelivered request republishes exactly those batches, never a re-chunking of a universe that
may have changed since, and skips the ones already done. That also heals a dispatch that died
halfway through publishing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from barlake.core.universe import NAME_REGEX
from barlake.messages import INGEST_BATCHES, IngestBatch, IngestRequest
from barlake.ports import EventBus, RunRecord, StateStore, SymbolRecord

DEFAULT_UNIVERSE = "default"
_NAME = re.compile(NAME_REGEX)


class EmptyUniverseError(ValueError):
    """Nothing to ingest: no symbols given and the universe is empty."""


@dataclass
class DispatchService:
    state: StateStore
    bus: EventBus
    clock: Callable[[], datetime]
    batch_size: int = 50
    topic: str = INGEST_BATCHES
    universes: Any = None  # barlake.services.universes.UniverseService: named, dated lists

    def run_id_for(self, request: IngestRequest, published: datetime | None = None) -> str:
        """A scheduled tick is named after the UTC day it was published, not the day it is
        processed: a tick retried past midnight is still that day's run."""
        if request.run_id:
            return request.run_id
        at = (published or self.clock()).astimezone(UTC)
        day = at.date()
        if request.universe not in (None, DEFAULT_UNIVERSE) and _NAME.fullmatch(request.universe):
            # One run per universe and UTC hour: jobs of different universes never merge, nor
            # two jobs of one universe on one day (tier 1 at the close and again at 03:30);
            # a redelivered tick keeps its publish time, so it is still the same run.
            return f"scheduled-{request.universe}-{day.isoformat()}-{at.hour:02d}"
        return f"scheduled-{day.isoformat()}"

    def handle(self, request: IngestRequest, published: datetime | None = None) -> RunRecord:
        run_id = self.run_id_for(request, published)
        existing = self.state.get_run(run_id)
        if existing is None:
            run = self._create(run_id, request)
            done: set[str] = set()
        else:
            run = existing.run
            done = {
                b.batch_id for b in existing.batches if not any(o.retryable for o in b.outcomes)
            }
        params = run.params
        start, end = params.get("start"), params.get("end")
        messages = [
            (
                IngestBatch(
                    run_id,
                    batch_id,
                    symbols,
                    date.fromisoformat(start) if start else None,
                    date.fromisoformat(end) if end else None,
                    bool(params.get("full")),
                    audit=run.kind == "audit",
                ).to_json(),
                {"run_id": run_id, "batch_id": batch_id},
            )
            for batch_id, symbols in zip(run.batch_ids, run.batch_symbols, strict=True)
            if batch_id not in done
        ]
        # All batches in flight at once (Pub/Sub batches them), every one awaited before the
        # request is acknowledged: a dispatch never "succeeds" with batches unsent.
        self.bus.publish_many(self.topic, messages)
        return run

    def _create(self, run_id: str, request: IngestRequest) -> RunRecord:
        universe = request.universe or DEFAULT_UNIVERSE
        if request.symbols:
            self._register(request.symbols, universe)
            symbols = sorted(request.symbols)
        else:
            symbols = self._members(universe, request.end)
        if not symbols:
            raise EmptyUniverseError(f"universe {universe!r} has no active symbols")
        chunks = [symbols[i : i + self.batch_size] for i in range(0, len(symbols), self.batch_size)]
        run = RunRecord(
            run_id=run_id,
            kind=request.kind,
            created_at=self.clock(),
            batch_ids=tuple(f"{run_id}-b{i:05d}" for i in range(len(chunks))),
            symbols=len(symbols),
            params={
                "universe": universe,
                "start": request.start.isoformat() if request.start else None,
                "end": request.end.isoformat() if request.end else None,
                "full": request.full or request.kind == "audit",
            },
            batch_symbols=tuple(tuple(c) for c in chunks),
        )
        if not self.state.create_run(run):  # a concurrent delivery created it first
            winner = self.state.get_run(run_id)
            assert winner is not None
            return winner.run
        return run

    def _members(self, universe: str, end: date | None) -> list[str]:
        """A named universe's members on the run's day (its `end`, else today), point-in-time;
        otherwise the registry's symbols labelled with that universe. Members new to the
        registry are registered; symbols the registry holds inactive stay out of the run."""
        day = end or self.clock().astimezone(UTC).date()
        named = self.universes.members_on(universe, day) if self.universes else None
        if named is None:
            return [r.symbol for r in self.state.list_symbols(universe)]
        known = {r.symbol: r for r in self.state.list_symbols(active_only=False)}
        new = []
        for s in named:  # label members with the universe; never flip a symbol's `active`
            old = known.get(s)
            if old is None:
                new.append(SymbolRecord(s, (universe,)))
            elif universe not in old.universes:
                labels = tuple(sorted({*old.universes, universe}))
                new.append(SymbolRecord(s, labels, old.tags, old.active))
        if new:
            self.state.upsert_symbols(new)
        return [s for s in named if s not in known or known[s].active]

    def _register(self, symbols: tuple[str, ...], universe: str) -> None:
        known = {r.symbol: r for r in self.state.list_symbols(active_only=False)}
        records = []
        for s in symbols:
            old = known.get(s)
            if old is None:
                records.append(SymbolRecord(s, (universe,)))
            elif universe not in old.universes or not old.active:
                records.append(
                    SymbolRecord(s, tuple(sorted({*old.universes, universe})), old.tags, True)
                )
        if records:
            self.state.upsert_symbols(records)
