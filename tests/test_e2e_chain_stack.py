"""The provider chain through the local cloud stack (Pub/Sub, fake-gcs-server and Firestore
emulators, every function in its own process): `BARLAKE_PROVIDER=replay:DIR,tiingo`, the
primary (replayed Yahoo recordings) failing with HTTP 503, Tiingo (a local HTTP server) serving
the symbol; then the primary answering again and its values replacing the fallback's rows
without a restatement. The Tiingo body is synthesized from the Yahoo recording (one close moved
by 1 %)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from barlake import stack
from barlake.adapters.replay_provider import CURRENT, clone_recording
from barlake.adapters.yahoo_chart import load_chart
from barlake.core.codec import decode_daily, decode_provenance
from barlake.core.layout import daily_name
from barlake.core.merge import bars_equal
from barlake.messages import IngestRequest
from provider_server import ProviderServer, json_answer, serve
from test_e2e_stack import AAPL_2020, Cloud, PushProxy
from test_provider_chain import MOVED, tiingo_rows_from

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def tiingo() -> Iterator[ProviderServer]:
    with serve() as server:
        rec = load_chart(AAPL_2020)
        server.route(
            "/tiingo/daily/CHN/prices", json_answer(tiingo_rows_from(rec.bars, rec.actions))
        )
        yield server


@pytest.fixture(scope="module")
def chain_cloud(
    tiingo: ProviderServer,
    tmp_path_factory: pytest.TempPathFactory,
    require_emulators: Callable[[Callable[[], Any]], Any],
) -> Iterator[Cloud]:
    replay = tmp_path_factory.mktemp("replay")
    clone_recording(AAPL_2020, "CHN", replay / "1", status=503)  # Yahoo failing
    clone_recording(AAPL_2020, "CHN", replay / "2")  # Yahoo answering again
    (replay / CURRENT).write_text("1")
    root = tmp_path_factory.mktemp("stack")
    proxy = PushProxy()
    env = {
        "BARLAKE_PROVIDER": f"replay:{replay},tiingo",
        "BARLAKE_TIINGO_URL": tiingo.url,
        "BARLAKE_TIINGO_TOKEN": "t" * 40,
    }
    info = require_emulators(lambda: stack.up(root, env, push_endpoint=proxy.endpoint))
    try:
        with stack.environ(info.env):
            yield Cloud(info, replay, proxy)
    finally:
        stack.down(root)
        proxy.close()
        shutil.rmtree(root, ignore_errors=True)


def test_primary_failure_served_by_tiingo_then_healed_through_the_stack(
    chain_cloud: Cloud, tiingo: ProviderServer
) -> None:
    cloud = chain_cloud
    first = cloud.wait_run(
        cloud.publish(IngestRequest(kind="manual", run_id="chain-1", symbols=("CHN",)))
    )
    assert [(o.symbol, o.status) for o in first.outcomes()] == [("CHN", "ok")]
    stored = cloud.app.raw.read(daily_name("CHN"))
    assert stored is not None
    assert set(decode_provenance(stored.data).column("source").to_pylist()) == {"tiingo"}
    asked = len(tiingo.seen)
    assert asked >= 1

    cloud.use("2")
    second = cloud.wait_run(
        cloud.publish(IngestRequest(kind="manual", run_id="chain-2", symbols=("CHN",)))
    )
    (outcome,) = second.outcomes()
    assert (outcome.status, outcome.restatement) == ("ok", None)
    healed = cloud.app.raw.read(daily_name("CHN"))
    assert healed is not None
    bars, _ = decode_daily(healed.data)
    expected = load_chart(AAPL_2020).bars
    renamed = expected.set_column(0, "symbol", bars.column("symbol"))  # the clone's name
    assert bars_equal(bars, renamed)
    assert set(decode_provenance(healed.data).column("source").to_pylist()) == {"replay"}
    assert len(tiingo.seen) == asked  # the fallback was not asked again
    (record,) = cloud.app.state.restatements("CHN")
    assert record.kinds == ("fallback_replaced",)
    assert [d["date"] for d in record.evidence["differences"]] == [MOVED.isoformat()]
