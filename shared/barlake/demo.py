"""The offline demo: real Yahoo recordings replayed through the whole embedded pipeline.

Three recordings (see demo_data/SOURCES.md) are ingested in order, exactly as three daily runs
would see Yahoo: the first stores history (and sets MSFT's in-progress bar aside), the second
and third bring 20:1 splits, dividend restatements of adj close and a revised volume. After the
last run the stored history of every symbol must equal the latest recording: the demo checks
that and reports each restatement it healed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path

from barlake.adapters.replay_provider import ReplayProvider
from barlake.config import App, Settings, build_embedded, run_embedded
from barlake.core.calendar import calendar_for
from barlake.core.merge import bars_equal
from barlake.core.validate import validate
from barlake.messages import IngestRequest
from barlake.ports import RunStatus, SymbolOutcome
from barlake.services.ingest import utc_now

DEMO_SYMBOLS = ("AAPL", "AMZN", "GOOG", "MSFT")


@dataclass(frozen=True)
class Stage:
    recording: str
    run: RunStatus


@dataclass(frozen=True)
class Check:
    symbol: str
    rows: int
    matches_latest: bool


def run_demo(
    lake: Path, on_outcome: Callable[[SymbolOutcome], None] | None = None
) -> tuple[App, list[Stage], list[Check]]:
    with as_file(files("barlake") / "demo_data") as data:
        provider = ReplayProvider(Path(data))
        app = build_embedded(Settings.from_env({}, lake_dir=str(lake)), provider=provider)
        app.observe(on_outcome)
        stages = []
        while True:
            run_id = f"demo-{provider.recording}-{uuid.uuid4().hex[:6]}"
            request = IngestRequest(
                kind="manual", run_id=run_id, symbols=DEMO_SYMBOLS, universe="demo"
            )
            stages.append(Stage(provider.recording, run_embedded(app, request)))
            if not provider.advance():
                break
        checks = []
        for symbol in DEMO_SYMBOLS:
            recorded = provider.recorded(symbol)
            assert recorded is not None and recorded.bars is not None
            expected = validate(
                recorded.bars,
                calendar=calendar_for(symbol),
                today=utc_now().date(),
                as_of=recorded.as_of,
            ).good
            stored = app.read.bars(symbol).table
            checks.append(Check(symbol, stored.num_rows, bars_equal(stored, expected)))
    return app, stages, checks
