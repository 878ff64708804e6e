"""The offline demo: real Yahoo recordings replayed through the whole embedded pipeline.

Three recordings (see demo_data/SOURCES.md) are ingested in order, exactly as three daily runs
would see Yahoo: the first stores history (and sets MSFT's in-progress bar aside), the second
and third bring 20:1 splits, dividend restatements of adj close and a revised volume. After the
last run the stored history of every symbol must equal the latest recording: the demo checks
that and reports each restatement it healed.

The third recording of MSFT is a six-month window that starts later than what the lake holds:
the ingest treats that answer as suspect (Yahoo cuts histories short when it throttles), applies
nothing and retries; the demo's next run sees the same start again, takes it as the provider's
genuine purge, applies it and keeps the older stored days (docs/data-quality.md). So a stored
history equals the latest recording over the recording's span, and holds only kept older days
before it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

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
    rows: int  # stored bars over the latest recording's span
    matches_latest: bool
    kept_older: int = 0  # stored bars before it: kept after the provider purged them


MARKER = ".barlake-demo"  # left in a lake the demo wrote: running it again starts it afresh


class DemoLakeError(ValueError):
    """The demo's folder holds something else (a real lake, other files): never overwritten."""


def prepare_demo_lake(folder: Path) -> Path:
    """An empty folder for the demo: created, or emptied when a previous demo left it (its
    marker file says so); any other non-empty folder is refused, so a real lake is never mixed
    with recorded 2020–2025 bars."""
    import shutil

    if folder.exists() and not folder.is_dir():
        raise DemoLakeError(f"{folder} is a file, not a folder for the demo lake")
    if folder.is_dir() and any(folder.iterdir()):
        if not (folder / MARKER).is_file():
            raise DemoLakeError(
                f"{folder} is not empty and was not written by the demo; "
                f"give the demo its own folder: barlake demo --lake demo-lake"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("written by `barlake demo`; the next demo run replaces it\n")
    return folder


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
            status = run_embedded(app, request)
            stages.append(Stage(provider.recording, status))
            if any("suspect answer" in (o.error or "") for o in status.outcomes()):
                retry = IngestRequest(
                    kind="manual",
                    run_id=f"{run_id}-next",
                    symbols=DEMO_SYMBOLS,
                    universe="demo",
                )
                stages.append(Stage(f"{provider.recording} (next run)", run_embedded(app, retry)))
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
            first = expected.column("date")[0].as_py()
            span = stored.filter(pc.greater_equal(stored["date"], pa.scalar(first, pa.date32())))
            kept = stored.num_rows - span.num_rows
            checks.append(Check(symbol, span.num_rows, bars_equal(span, expected), kept))
    return app, stages, checks
