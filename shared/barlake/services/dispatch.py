"""Dispatch: turn one ingest request into a run record and batches of symbols.

Idempotent under redelivery: the run id is the request's (a scheduled tick is named after its
UTC day, so two ticks on one day are one run), batch ids are the run id plus an index over the
sorted symbols, and batches already recorded as done are not sent again. The run record is
created once; a redelivered request finds it and republishes only the unfinished batches, which
also heals a dispatch that died halfway through publishing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from barlake.messages import INGEST_BATCHES, IngestBatch, IngestRequest
from barlake.ports import EventBus, RunRecord, StateStore, SymbolRecord

DEFAULT_UNIVERSE = "default"


class EmptyUniverseError(ValueError):
    """Nothing to ingest: no symbols given and the universe is empty."""


@dataclass
class DispatchService:
    state: StateStore
    bus: EventBus
    clock: Callable[[], datetime]
    batch_size: int = 50
    topic: str = INGEST_BATCHES

    def run_id_for(self, request: IngestRequest) -> str:
        if request.run_id:
            return request.run_id
        if request.kind == "scheduled":
            return f"scheduled-{self.clock().date().isoformat()}"
        return f"{request.kind}-{uuid.uuid4().hex[:12]}"

    def handle(self, request: IngestRequest) -> RunRecord:
        universe = request.universe or DEFAULT_UNIVERSE
        if request.symbols:
            self._register(request.symbols, universe)
            symbols = sorted(request.symbols)
        else:
            symbols = [r.symbol for r in self.state.list_symbols(universe)]
        if not symbols:
            raise EmptyUniverseError(f"universe {universe!r} has no active symbols")
        run_id = self.run_id_for(request)
        chunks = [symbols[i : i + self.batch_size] for i in range(0, len(symbols), self.batch_size)]
        batch_ids = tuple(f"{run_id}-b{i:05d}" for i in range(len(chunks)))
        run = RunRecord(
            run_id=run_id,
            kind=request.kind,
            created_at=self.clock(),
            batch_ids=batch_ids,
            symbols=len(symbols),
            params={
                "universe": universe,
                "start": request.start,
                "end": request.end,
                "full": request.full,
            },
        )
        if not self.state.create_run(run):
            existing = self.state.get_run(run_id)
            assert existing is not None
            run = existing.run
            done = {b.batch_id for b in existing.batches}
        else:
            done = set()
        for batch_id, chunk in zip(batch_ids, chunks, strict=True):
            if batch_id in done or batch_id not in run.batch_ids:
                continue
            message = IngestBatch(
                run_id, batch_id, tuple(chunk), request.start, request.end, request.full
            )
            self.bus.publish(
                self.topic, message.to_json(), {"run_id": run_id, "batch_id": batch_id}
            )
        return run

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
