"""Symbol lifecycle: active → suspect → delisted, only on evidence that survives an outage.

A provider's "not found" is weak evidence: Yahoo says it for every ticker when it blocks us
(services/outage.py holds those batches back before they get here) and now and then for a
symbol it still has. So a symbol is delisted only after `after_days` not-found answers on
distinct days within `window_days`, each in a batch where other symbols succeeded (the
provider was answering). Between the first such answer and the last it is "suspect". Evidence
older than the window is forgotten, so a symbol that answered again long ago starts afresh.

On delisting, the registry record becomes inactive with the tag "delisted": the symbol leaves
the daily fan-out (dispatch lists active symbols) and keeps its data (nothing is deleted). A
run that names it explicitly makes it active again (dispatch re-registers named symbols).

The evidence lives beside the lake, one small JSON object per symbol that ever answered
not-found (`registry/<key>.json` in the raw bucket: the ingest can already read and write
there, no listing needed, and only a not-found answer reads or writes it). `barlake delisted`
lists them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from barlake.core.layout import symbol_key
from barlake.ports import (
    ErrorKind,
    ObjectStore,
    PreconditionFailed,
    StateStore,
    SymbolOutcome,
    SymbolRecord,
)

log = logging.getLogger(__name__)

LIFECYCLE_PREFIX = "registry/"
DELISTED_TAG = "delisted"
SUCCEEDED = frozenset({"ok", "unchanged", "restated"})


def lifecycle_name(symbol: str) -> str:
    return f"{LIFECYCLE_PREFIX}{symbol_key(symbol)}.json"


@dataclass
class LifecycleService:
    raw: ObjectStore
    state: StateStore
    after_days: int = 3
    window_days: int = 14

    def observe(self, outcomes: Sequence[SymbolOutcome], today: date, run_id: str) -> None:
        """Record the batch's not-found answers, if others in it succeeded."""
        if not any(o.status in SUCCEEDED for o in outcomes):
            return  # the provider answered nobody: no evidence about any symbol
        for o in outcomes:
            if o.status == "failed" and o.error_kind == ErrorKind.NOT_FOUND.value:
                try:
                    self._not_found(o.symbol, today, run_id, o.error or "")
                except Exception:  # evidence is best effort: never fail the batch for it
                    log.exception("%s: could not record the not-found answer", o.symbol)

    def get(self, symbol: str) -> dict[str, Any] | None:
        obj = self.raw.read(lifecycle_name(symbol))
        return json.loads(obj.data) if obj is not None else None

    def _not_found(self, symbol: str, today: date, run_id: str, error: str) -> None:
        name = lifecycle_name(symbol)
        for _ in range(5):
            obj = self.raw.read(name)
            doc = json.loads(obj.data) if obj is not None else {"symbol": symbol}
            if doc.get("status") == "delisted":
                return
            horizon = (today - timedelta(days=self.window_days)).isoformat()
            days = sorted({d for d in doc.get("not_found_days", []) if d > horizon})
            days = sorted({*days, today.isoformat()})
            doc.update(
                {
                    "status": "delisted" if len(days) >= self.after_days else "suspect",
                    "not_found_days": days,
                    "last_error": error,
                    "last_run_id": run_id,
                }
            )
            if doc["status"] == "delisted":
                doc["delisted_on"] = today.isoformat()
            data = json.dumps(doc, sort_keys=True).encode()
            try:
                self.raw.write(
                    name,
                    data,
                    if_generation_match=obj.info.generation if obj is not None else 0,
                    metadata={"kind": "lifecycle"},
                )
            except PreconditionFailed:
                continue  # a concurrent delivery wrote it: read again
            if doc["status"] == "delisted":
                self._deactivate(symbol)
                log.warning("%s: delisted after not-found answers on %s", symbol, ", ".join(days))
            return

    def _deactivate(self, symbol: str) -> None:
        """Leave the daily fan-out, keep the data (a rare event: one registry scan)."""
        known = {r.symbol: r for r in self.state.list_symbols(active_only=False)}
        old = known.get(symbol) or SymbolRecord(symbol)
        tags = tuple(sorted({*old.tags, DELISTED_TAG}))
        self.state.upsert_symbols([SymbolRecord(symbol, old.universes, tags, False)])


def list_lifecycle(raw: ObjectStore) -> list[dict[str, Any]]:
    """Every symbol with lifecycle evidence (suspect or delisted), by symbol (CLI only: the
    deployed functions may not list objects)."""
    docs = []
    for info in raw.list(LIFECYCLE_PREFIX):
        obj = raw.read(info.name)
        if obj is not None:
            docs.append(json.loads(obj.data))
    return sorted(docs, key=lambda d: d.get("symbol", ""))
