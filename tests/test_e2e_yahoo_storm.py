"""A Yahoo block storm through the local cloud stack (fake-gcs-server, the Pub/Sub and
Firestore emulators, every function under functions-framework), with the ingest function
talking to the simulated Yahoo over HTTP (BARLAKE_PROVIDER=yahoo-sim:URL, the real yfinance
code path) and pacing through a real redis-server (BARLAKE_PACER=redis).

While Yahoo answers "not found" for everyone, the run's batches are held back as a provider
outage — nothing written, the registry unchanged, the run incomplete, Pub/Sub redelivering with
backoff — and when the block lifts the redelivered batches complete the run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest

from barlake import stack
from barlake.config import App, Settings, build_app
from barlake.core.layout import daily_name
from barlake.messages import IngestRequest
from barlake.ports import RunStatus
from barlake.yahoo_sim import SimServer, SimulatedYahoo

pytestmark = pytest.mark.timeout(600)

DAY1, DAY2 = date(2025, 6, 12), date(2025, 6, 13)
SYMBOLS = tuple(f"E{i:02d}" for i in range(10))


def wait_for(what: str, check: Callable[[], Any], timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def yahoo() -> Iterator[SimServer]:
    server = SimServer(SimulatedYahoo(today=DAY1, limit=40, window_s=1.0))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cloud(
    yahoo: SimServer,
    redis_server: Any,
    tmp_path_factory: pytest.TempPathFactory,
    require_emulators: Callable[[Callable[[], Any]], Any],
) -> Iterator[App]:
    root = tmp_path_factory.mktemp("stack")
    env = {
        "BARLAKE_PROVIDER": f"yahoo-sim:{yahoo.url}",
        "BARLAKE_BATCH_SIZE": "5",
        "BARLAKE_PACER": "redis",
        "BARLAKE_REDIS_URL": redis_server.env["BARLAKE_REDIS_URL"],
        "BARLAKE_YAHOO_REQUESTS_PER_MINUTE": "1800",  # 30/s: under the simulated 40/s
        "BARLAKE_PACER_JITTER_MS": "0",
    }
    info = require_emulators(lambda: stack.up(root, env))
    try:
        with stack.environ(info.env):
            yield build_app(Settings.from_env(info.env))
    finally:
        stack.down(root)


def run(app: App, run_id: str, **kw: Any) -> None:
    request = IngestRequest(kind="manual", run_id=run_id, symbols=SYMBOLS, **kw)
    app.bus.publish(app.settings.ingest_requests_topic, request.to_json())


def complete(app: App, run_id: str) -> RunStatus | None:
    status = app.state.get_run(run_id)
    return status if status is not None and status.complete else None


def test_block_storm_leaves_the_lake_alone_then_completes_when_it_lifts(
    cloud: App, yahoo: SimServer
) -> None:
    sim = yahoo.sim
    run(cloud, "load", start=date(2025, 5, 1))
    loaded = wait_for("the first load", lambda: complete(cloud, "load"))
    assert {o.status for o in loaded.outcomes()} == {"ok"}
    registry = cloud.state.list_symbols(active_only=False)
    generations = {s: cloud.raw.stat(daily_name(s)).generation for s in SYMBOLS}  # type: ignore[union-attr]

    sim.today, sim.blocked = DAY2, True
    charts = sim.stats["chart"]
    run(cloud, "storm")

    def held() -> RunStatus | None:
        status = cloud.state.get_run("storm")
        if status is None or len(status.batches) < len(status.run.batch_ids):
            return None
        return status if {o.error_kind for o in status.outcomes()} == {"outage"} else None

    storm = wait_for("both batches held back as an outage", held)
    assert not storm.complete
    assert "provider outage: 5 of 5 previously active symbols" in storm.outcomes()[0].error
    assert cloud.state.list_symbols(active_only=False) == registry
    assert {s: cloud.raw.stat(daily_name(s)).generation for s in SYMBOLS} == generations  # type: ignore[union-attr]
    assert sim.stats["chart"] == charts  # the quotes said it: no chart request spent

    sim.blocked = False  # Pub/Sub redelivers with backoff; the run completes
    done = wait_for(
        "the storm run to complete once the block lifts", lambda: complete(cloud, "storm")
    )
    assert {o.status for o in done.outcomes()} == {"ok"}
    assert cloud.read.bars("E00").table.column("date").to_pylist()[-1] == DAY2
    assert sim.stats["rate_limited"] == 0
