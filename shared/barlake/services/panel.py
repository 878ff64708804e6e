"""Build the cross-sectional panel (barlake.core.panel) from the per-symbol daily objects.

When: the ingest that records a run's last batch sees the run complete in the ledger and
publishes `run-completed` (`announce_if_complete`); the `panel` function builds on it. Also
`barlake panel build`, and embedded runs through the in-process bus.

What: the raw bucket's listing is compared with the panel's manifest; only symbols whose daily
generation moved are read, and only the partitions whose slices changed are rewritten (a daily
update: this year's daily, weekly and monthly partitions).

Never racing with itself:
- a build first takes a lease (`panel/_lease.json`), created or taken over (after expiry) with a
  generation precondition, so two builds never run at once; the lease outlives the function's
  timeout, so a build killed mid-way cannot wake up and write after another took over;
- every partition and the manifest are written conditionally on the generation read, like the
  daily objects: anything else writing them meanwhile makes this build fail (and be retried)
  instead of overwriting it;
- the manifest is written last, so a build that dies half-way leaves partitions newer than the
  manifest says, and the next build redoes those symbols (the rows are replaced, not appended).
The panel is derived: deleting `panel/` and building again gives the same bytes' rows.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from barlake.core.codec import decode_bars
from barlake.core.layout import RAW_DAILY_PREFIX, daily_name, symbol_of_daily
from barlake.core.panel import (
    LEASE_NAME,
    MANIFEST_NAME,
    MANIFEST_SCHEMA,
    Entries,
    Slices,
    changed_partitions,
    decode_manifest,
    decode_partition,
    encode_manifest,
    encode_partition,
    manifest_table,
    merge_partition,
    partition_name,
    symbol_update,
)
from barlake.messages import RunCompleted
from barlake.ports import EventBus, ObjectStore, PreconditionFailed, StateStore, TransientError

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Longer than the panel function's timeout (540 s): a build past it has been killed.
LEASE_SECONDS = 900


class PanelBusyError(TransientError):
    """Another build holds the lease: try again later (transient; Pub/Sub redelivers)."""


@dataclass(frozen=True)
class PanelReport:
    symbols: int  # daily objects in the lake
    changed: int  # symbols whose rows were (re)published
    removed: int  # symbols no longer in the lake
    partitions: tuple[str, ...]  # partition objects written
    rows: int  # rows in the partitions written
    skipped: tuple[str, ...] = ()  # daily objects that cannot be decoded (left as they were)

    def to_json(self) -> dict[str, object]:
        return {
            "symbols": self.symbols,
            "changed": self.changed,
            "removed": self.removed,
            "partitions": list(self.partitions),
            "rows": self.rows,
            "skipped": list(self.skipped),
        }


@dataclass
class PanelService:
    raw: ObjectStore
    derived: ObjectStore
    clock: Clock
    workers: int = 16
    lease_seconds: int = LEASE_SECONDS
    _holder: str = field(default_factory=lambda: uuid.uuid4().hex)

    # ------------------------------------------------------------------ lease
    @contextmanager
    def _lease(self) -> Iterator[None]:
        now = self.clock()
        current = self.derived.read(LEASE_NAME)
        if current is not None:
            held = json.loads(current.data)
            if not held.get("released") and datetime.fromisoformat(held["expires"]) > now:
                raise PanelBusyError(f"a panel build holds the lease until {held['expires']}")
        body = {
            "holder": self._holder,
            "expires": (now + timedelta(seconds=self.lease_seconds)).isoformat(),
        }
        try:
            mine = self.derived.write(
                LEASE_NAME,
                json.dumps(body).encode(),
                if_generation_match=current.info.generation if current else 0,
            )
        except PreconditionFailed as exc:
            raise PanelBusyError("another panel build took the lease first") from exc
        try:
            yield
        finally:
            released = json.dumps({**body, "released": True}).encode()
            try:
                self.derived.write(LEASE_NAME, released, if_generation_match=mine.generation)
            except PreconditionFailed:  # taken over after expiry: nothing of ours to release
                log.warning("panel lease was taken over before this build released it")

    # ------------------------------------------------------------------ build
    def handle(self, event: RunCompleted) -> str:
        report = self.build()
        log.info("panel after run %s: %s", event.run_id, report.to_json())
        return "built" if report.partitions else "unchanged"

    def build(self) -> PanelReport:
        with self._lease():
            return self._build()

    def _manifest(self) -> tuple[pa.Table, int]:
        obj = self.derived.read(MANIFEST_NAME)
        if obj is None:
            return MANIFEST_SCHEMA.empty_table(), 0
        return decode_manifest(obj.data), obj.info.generation

    def _build(self) -> PanelReport:
        manifest, manifest_gen = self._manifest()
        held = dict(
            zip(
                manifest.column("symbol").to_pylist(),
                manifest.column("generation").to_pylist(),
                strict=True,
            )
        )
        lake: dict[str, int] = {}
        for info in self.raw.list(RAW_DAILY_PREFIX):
            symbol = symbol_of_daily(info.name)
            if symbol is not None:
                lake[symbol] = info.generation
        changed = sorted(s for s, g in lake.items() if held.get(s) != g)
        removed = sorted(set(held) - set(lake))
        touched = set(changed) | set(removed)
        in_touched = pc.is_in(manifest.column("symbol"), pa.array(sorted(touched), pa.string()))
        old = manifest.filter(in_touched)
        old_entries: dict[str, Entries] = defaultdict(dict)
        for row in old.to_pylist():
            if row["year"] >= 0:
                key = (row["interval"], row["year"])
                old_entries[row["symbol"]][key] = (row["digest"], row["rows"])

        # (interval, year) → {symbol: its new rows there (None: no rows any more)}
        updates: dict[tuple[str, int], dict[str, pa.Table | None]] = defaultdict(dict)
        fresh: dict[str, tuple[int, Entries]] = {}

        def one(symbol: str) -> tuple[str, int, Entries, Slices] | None:
            return self._update(symbol, old_entries.get(symbol, {}))

        skipped: list[str] = []
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for symbol, found in zip(changed, pool.map(one, changed), strict=True):
                if found is None:  # cannot be decoded: keep its panel rows and manifest entry
                    skipped.append(symbol)
                    continue
                _, generation, entries, slices = found
                fresh[symbol] = (generation, entries)
                for key in changed_partitions(old_entries.get(symbol, {}), entries):
                    updates[key][symbol] = slices.get(key)
        for symbol in removed:
            for key in changed_partitions(old_entries.get(symbol, {}), {}):
                updates[key][symbol] = None

        written, rows_written = [], 0
        for (interval, year), by_symbol in sorted(updates.items()):
            name = partition_name(interval, year)
            current = self.derived.read(name)
            existing = decode_partition(current.data, interval) if current else None
            rows = [t for t in by_symbol.values() if t is not None]
            table = merge_partition(existing, by_symbol, rows, interval)
            self._write(name, encode_partition(table), current.info.generation if current else 0)
            written.append(name)
            rows_written += table.num_rows

        if skipped:
            log.error("panel: daily objects that cannot be decoded, left as they were: %s", skipped)
            done = sorted(touched - set(skipped))
            in_touched = pc.is_in(manifest.column("symbol"), pa.array(done, pa.string()))
        if touched - set(skipped):
            keep = manifest.filter(pc.invert(in_touched))
            updated = pa.concat_tables([keep, manifest_table(fresh)]).combine_chunks()
            self._write(MANIFEST_NAME, encode_manifest(updated), manifest_gen)
        return PanelReport(
            len(lake), len(fresh), len(removed), tuple(written), rows_written, tuple(skipped)
        )

    def _update(self, symbol: str, old: Entries) -> tuple[str, int, Entries, Slices] | None:
        """One symbol's manifest entries and changed slices, from its daily object as it is
        now (gone since the listing: no rows, generation -1; None: it cannot be decoded, which
        a rebuild would not change, so it must not stall the panel of every other symbol)."""
        from barlake.services.derived import CorruptObjectError, complete_through, decoded

        obj = self.raw.read(daily_name(symbol))
        if obj is None:
            return symbol, -1, {}, {}
        try:
            bars = decoded(obj.info.name, decode_bars, obj.data)
        except CorruptObjectError:
            return None
        through = (
            complete_through(symbol, bars.column("date")[-1].as_py()) if bars.num_rows else None
        )
        entries, slices = symbol_update(bars, through, old)
        return symbol, obj.info.generation, entries, slices

    def _write(self, name: str, data: bytes, generation: int) -> None:
        try:
            self.derived.write(name, data, if_generation_match=generation)
        except PreconditionFailed as exc:
            raise TransientError(f"{name} changed during the panel build: retry") from exc


def announce_if_complete(state: StateStore, bus: EventBus, topic: str, run_id: str) -> bool:
    """Publish `run-completed` when the ledger shows the run complete. Called by every ingest
    after it records its batch: the batch records are written before this read, so whichever
    batch finishes last sees the run complete (two finishing together may both publish; the
    panel build is idempotent)."""
    status = state.get_run(run_id)
    if status is None or not status.complete:
        return False
    bus.publish(topic, RunCompleted(run_id=run_id).to_json())
    # One line per complete run: the freshness SLO's log-based metric (infra/guardrails.tf).
    fields = {"function": "ingest", "outcome": "run_completed", "run_id": run_id}
    log.info("run %s complete: announced on %s", run_id, topic, extra={"fields": fields})
    return True
