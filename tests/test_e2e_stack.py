"""End to end through the local cloud stack: fake-gcs-server, the Pub/Sub and Firestore
emulators, and every function under functions-framework (`barlake.stack`, as `barlake stack
up` runs it), fed by the replay provider with real Yahoo recordings.

Every push subscription goes through a small proxy that counts deliveries and can deliver each
message several times, out of order. The replay folder's CURRENT file switches the recording
the ingest function serves (a restatement, a provider failure that clears).

What is compared: the stack's objects and records against an embedded run of the same input
(daily objects byte for byte; weekly/monthly bars and profiles by content, since their
metadata name the source object's generation, which differs between stores).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest

import barlake
from barlake import stack
from barlake.adapters.replay_provider import CURRENT, ReplayProvider, clone_recording
from barlake.adapters.yahoo_chart import load_chart
from barlake.config import App, Settings, build_app, build_embedded, run_embedded
from barlake.core.codec import decode_daily, decode_periods, decode_provenance
from barlake.core.layout import daily_name, period_name, profile_name
from barlake.messages import RAW_OBJECT_FINALIZED, AuditTick, IngestRequest
from barlake.ports import RunStatus, SymbolRecord

pytestmark = pytest.mark.timeout(900)

DEMO = Path(barlake.__file__).parent / "demo_data"
STAGE1 = DEMO / "1-recorded-2021-11-22"
STAGE2 = DEMO / "2-recorded-2025-08-15"
AAPL_2020 = STAGE1 / "AAPL.json"  # 2020-08-31 → 2020-11-06, with the 4:1 split of 2020-08-31
NOT_FOUND = Path(__file__).parent / "fixtures/yahoo/chart_api_errors"
NOT_FOUND = NOT_FOUND / "historical-via-chart-SIX-2020-01-01-to-2020-01-03.json"

TICK = [f"T{i:02d}" for i in range(1, 7)]
DUPS = [f"D{i:02d}" for i in range(1, 7)]
WAIT_S = 180


# ----------------------------------------------------------------------------- push proxy


class PushProxy:
    """Between Pub/Sub and the functions: counts each delivery per message id and, with
    copies > 1, delivers every push that many times, each after a random delay (so copies of
    different messages interleave in a shuffled order). Pub/Sub gets the answer of one copy."""

    def __init__(self) -> None:
        self.targets: dict[str, str] = {}
        self.copies = 1
        self.deliveries: Counter[tuple[str, str]] = Counter()
        self.pending = 0
        self.lock = threading.Lock()
        self.rng = random.Random(7)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                name = self.path.strip("/").split("/")[0]
                status, answer = proxy.deliver(name, body)
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def endpoint(self, name: str, url: str) -> str:
        self.targets[name] = url
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}/"

    def _forward(self, name: str, body: bytes) -> tuple[int, bytes]:
        message_id = json.loads(body)["message"]["messageId"]
        with self.lock:
            self.deliveries[(name, message_id)] += 1
        request = urllib.request.Request(
            self.targets[name] + "/",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def deliver(self, name: str, body: bytes) -> tuple[int, bytes]:
        with self.lock:
            copies = self.copies
            delays = [self.rng.uniform(0, 0.4) for _ in range(copies)]
            self.pending += copies - 1
        for delay in delays[1:]:
            threading.Thread(target=self._late, args=(name, body, delay), daemon=True).start()
        time.sleep(delays[0])
        return self._forward(name, body)

    def _late(self, name: str, body: bytes, delay: float) -> None:
        time.sleep(delay)
        try:
            self._forward(name, body)
        finally:
            with self.lock:
                self.pending -= 1

    def count(self, name: str) -> int:
        return sum(n for (fn, _), n in self.deliveries.items() if fn == name)

    def drained(self) -> bool:
        return self.pending == 0

    def close(self) -> None:
        self.server.shutdown()


# ----------------------------------------------------------------------------- the stack


def wait_for(what: str, check: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Cloud:
    """The running stack, seen from the test: the same adapters the functions use."""

    def __init__(self, info: stack.StackInfo, replay: Path, proxy: PushProxy) -> None:
        self.info = info
        self.replay = replay
        self.proxy = proxy
        with stack.environ(info.env):
            self.app: App = build_app(Settings.from_env(info.env))
        self.finalized: Counter[str] = Counter()
        from google.cloud import pubsub_v1

        self.subscriber = pubsub_v1.SubscriberClient()
        self.audit = self.subscriber.subscription_path(info.project, "e2e-audit")

    def use(self, recording: str) -> None:
        (self.replay / CURRENT).write_text(recording)

    def publish(self, request: IngestRequest) -> str:
        self.app.bus.publish(self.app.settings.ingest_requests_topic, request.to_json())
        return request.run_id or ""

    def wait_run(self, run_id: str) -> RunStatus:
        def done() -> RunStatus | None:
            status = self.app.state.get_run(run_id)
            return status if status is not None and status.complete else None

        return wait_for(f"run {run_id} to complete", done)

    def wait_derived(self, symbols: list[str]) -> None:
        """Weekly, monthly and profile built from each symbol's current daily object."""

        def built() -> bool:
            for symbol in symbols:
                info = self.app.raw.stat(daily_name(symbol))
                profile = self.app.state.get_profile(symbol)
                if info is None or profile is None or profile["generation"] != info.generation:
                    return False
                for interval in ("1wk", "1mo"):
                    made = self.app.derived.stat(period_name(symbol, interval))
                    if made is None or made.metadata.get("source_generation") != str(
                        info.generation
                    ):
                        return False
            return True

        wait_for(f"derived objects of {symbols}", built)

    def builds(self, function: str) -> Counter[str]:
        """How many times `function` actually built from each raw object (its JSON log lines:
        result "built", as opposed to "duplicate" or "stale")."""
        log = Path(next(c.log for c in self.info.components if c.name == f"fn-{function}"))
        lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
        return Counter(
            x["object"] for x in lines if x.get("outcome") == "done" and x["result"] == "built"
        )

    def pull_finalized(self) -> Counter[str]:
        """Every raw finalize notification so far, by object name (an audit subscription)."""
        while True:
            response = self.subscriber.pull(
                request={"subscription": self.audit, "max_messages": 1000}, timeout=10
            )
            if not response.received_messages:
                return self.finalized
            for received in response.received_messages:
                self.finalized[received.message.attributes["objectId"]] += 1
            self.subscriber.acknowledge(
                request={
                    "subscription": self.audit,
                    "ack_ids": [r.ack_id for r in response.received_messages],
                }
            )


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stage 1: the demo's 2021 recordings, clones of AAPL's 2020 bars under test symbols, a
    delisted symbol (HTTP 404) and FLAKY failing with HTTP 503. Stage 2: the 2025 recordings
    (GOOG and AMZN after their 20:1 splits). Stage 3: FLAKY answers."""
    root = tmp_path_factory.mktemp("replay")
    shutil.copytree(STAGE1, root / "1")
    shutil.copytree(STAGE2, root / "2")
    for symbol in [*TICK, *DUPS, "B01", "B02", "C01", "U01", "U02", "W01", "W02", "W03"]:
        clone_recording(AAPL_2020, symbol, root / "1")
    clone_recording(AAPL_2020, "FLAKY", root / "1", status=503)
    clone_recording(AAPL_2020, "FLAKY", root / "3")
    shutil.copy(NOT_FOUND, root / "1" / "GONE.json")
    # HIST for the audit scenario: stage 1 lacks one session and has the old volume of a day
    # 20 sessions back; stage 4 (the provider's later truth) has both right.
    truth = load_chart(AAPL_2020).bars.to_pylist()
    (root / "4").mkdir()
    _write_csv(root / "1" / "HIST.csv", [r for i, r in enumerate(truth) if i != 10], shift=True)
    _write_csv(root / "4" / "HIST.csv", truth)
    (root / CURRENT).write_text("1")
    return root


def _write_csv(path: Path, rows: list[dict[str, Any]], shift: bool = False) -> None:
    """yfinance CSV; `shift`: the volume 20 sessions from the end is 1,000 shares lower."""
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    for i, r in enumerate(rows):
        volume = r["volume"] - (1000 if shift and i == len(rows) - 20 else 0)
        prices = [repr(r[c]) for c in ("open", "high", "low", "close", "adj_close")]
        lines.append(",".join([r["date"].isoformat(), *prices, str(volume)]))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def cloud(
    replay: Path,
    tmp_path_factory: pytest.TempPathFactory,
    require_emulators: Callable[[Callable[[], Any]], Any],
) -> Iterator[Cloud]:
    root = tmp_path_factory.mktemp("stack")
    proxy = PushProxy()
    settings_env = {"BARLAKE_PROVIDER": f"replay:{replay}", "BARLAKE_BATCH_SIZE": "4"}
    info = require_emulators(lambda: stack.up(root, settings_env, push_endpoint=proxy.endpoint))
    try:
        with stack.environ(info.env):
            c = Cloud(info, replay, proxy)
            topic = c.app.bus.publisher.topic_path(info.project, RAW_OBJECT_FINALIZED)  # type: ignore[attr-defined]
            c.subscriber.create_subscription(request={"name": c.audit, "topic": topic})
            yield c
    finally:
        stack.down(root)
        proxy.close()


def embedded(tmp: Path, replay: Path, recording: str, *requests: IngestRequest) -> App:
    """The same input through the embedded lake, for comparison (its own copy of the
    recordings, without the stack's CURRENT pointer: this provider switches by `use`)."""
    copy = tmp / "replay"
    shutil.copytree(replay, copy, ignore=shutil.ignore_patterns(CURRENT))
    provider = ReplayProvider(copy, recording)
    app = build_embedded(Settings.from_env({}, lake_dir=str(tmp / "lake")), provider=provider)
    for request in requests:
        run_embedded(app, request)
    return app


def assert_same_lake(cloud_app: App, local: App, symbols: list[str]) -> None:
    for symbol in symbols:
        theirs, ours = cloud_app.raw.read(daily_name(symbol)), local.raw.read(daily_name(symbol))
        assert theirs is not None and ours is not None, symbol
        # Equal but for when each row was fetched (provenance's fetched_at: two runs' clocks).
        assert decode_daily(theirs.data) == decode_daily(ours.data), f"{symbol}: bars differ"
        sources = [decode_provenance(o.data).column("source") for o in (theirs, ours)]
        assert sources[0].equals(sources[1]), f"{symbol}: provenance differs"
        for interval in ("1wk", "1mo"):
            a = cloud_app.derived.read(period_name(symbol, interval))
            b = local.derived.read(period_name(symbol, interval))
            assert a is not None and b is not None
            assert decode_periods(a.data).equals(decode_periods(b.data)), (symbol, interval)
        pa_, pb = cloud_app.state.get_profile(symbol), local.state.get_profile(symbol)
        assert pa_ is not None and pb is not None
        assert comparable(pa_) == comparable(pb), symbol
        stored = cloud_app.derived.read(profile_name(symbol))
        assert stored is not None and json.loads(stored.data)["symbol"] == symbol


def comparable(profile: Mapping[str, Any]) -> dict[str, Any]:
    """A profile without what differs between two stores or two runs of the same input: the
    object's generation, and when a restatement was detected or the history verified."""
    out = {k: v for k, v in profile.items() if k not in ("generation", "verified_at")}
    if out.get("last_restatement"):
        out["last_restatement"] = {
            k: v for k, v in out["last_restatement"].items() if k != "detected_at"
        }
    return out


def outcomes(status: RunStatus) -> dict[str, tuple[str, int]]:
    return {o.symbol: (o.status, o.rows_written) for o in status.outcomes()}


# ----------------------------------------------------------------------------- the tests


def test_scheduled_tick_flows_through_every_function_like_the_embedded_run(
    cloud: Cloud, tmp_path: Path
) -> None:
    cloud.use("1")
    symbols = [*TICK, "MSFT", "AAPL"]
    cloud.app.state.upsert_symbols([SymbolRecord(s, ("e2e-tick",)) for s in symbols])
    # The Cloud Scheduler job's payload (infra/): a versioned tick naming its universe.
    cloud.app.bus.publish(
        cloud.app.settings.ingest_requests_topic,
        {"version": 1, "kind": "scheduled", "universe": "e2e-tick"},
    )
    run = wait_for("the tick's run", cloud.app.state.latest_run)
    status = cloud.wait_run(run.run.run_id)
    assert run.run.run_id.startswith("scheduled-")
    assert len(status.run.batch_ids) == 2  # 8 symbols, BARLAKE_BATCH_SIZE=4
    cloud.wait_derived(symbols)

    local = embedded(
        tmp_path,
        cloud.replay,
        "1",
        IngestRequest(kind="manual", run_id="x", symbols=tuple(symbols)),
    )
    assert outcomes(status) == outcomes(local.read.run("x"))
    assert all(o.status == "ok" and o.rows_written > 0 for o in status.outcomes())
    assert_same_lake(cloud.app, local, symbols)
    # one finalize notification per daily object: no write without a change
    finalized = cloud.pull_finalized()
    assert all(finalized[daily_name(s)] == 1 for s in symbols), finalized


def test_backfill_from_the_cli_adds_new_symbols_then_older_history(cloud: Cloud) -> None:
    cloud.use("1")
    env = {**os.environ, **cloud.info.env}

    def backfill(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "barlake.cli", "backfill", *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        run_id = done.stdout.split()[1].rstrip(":")
        assert run_id.startswith("backfill-"), done.stdout
        return run_id

    cloud.wait_run(backfill("B01", "B02", "--start", "2020-10-01"))
    first = cloud.app.read.bars("B01", "1d").table
    assert first.column("date")[0].as_py() == date(2020, 10, 1)
    last_day = first.column("date")[-1].as_py()

    cloud.wait_run(backfill("B01", "B02", "--start", "2020-09-01"))
    older = cloud.app.read.bars("B01", "1d").table
    assert older.column("date")[0].as_py() == date(2020, 9, 1)
    assert older.column("date")[-1].as_py() == last_day
    recorded = ReplayProvider(cloud.replay, "1").recorded("B01")
    assert recorded is not None
    want = recorded.bars.filter(pc.greater_equal(recorded.bars["date"], date(2020, 9, 1)))
    assert older.column("date").to_pylist() == want.column("date").to_pylist()
    cloud.wait_derived(["B01", "B02"])


def test_universe_imported_from_csv_drives_a_scheduled_run(cloud: Cloud, tmp_path: Path) -> None:
    """The CLI imports a CSV into Firestore; the Cloud Scheduler payload naming the universe
    runs exactly today's members (not the one that left, not the one joining later)."""
    cloud.use("1")
    csv = tmp_path / "e2e-csv.csv"
    csv.write_text(
        "symbol,from,to\nU01,2015-01-02,\nU02,,\nU03,2010-01-04,2020-01-02\nU04,2099-01-02,\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "barlake.cli", "universe", "import", "e2e-csv", str(csv)],
        env={**os.environ, **cloud.info.env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert cloud.app.universes.show("e2e-csv")["symbols"] == ["U01", "U02"]
    cloud.app.bus.publish(
        cloud.app.settings.ingest_requests_topic,
        {"version": 1, "kind": "scheduled", "universe": "e2e-csv"},
    )

    def dispatched() -> str | None:
        latest = cloud.app.state.latest_run()
        ok = latest is not None and latest.run.run_id.startswith("scheduled-e2e-csv-")
        return latest.run.run_id if ok else None

    status = cloud.wait_run(wait_for("the universe's run", dispatched))
    assert sorted(o.symbol for o in status.outcomes()) == ["U01", "U02"]
    assert all(o.status == "ok" and o.rows_written > 0 for o in status.outcomes())
    assert cloud.app.raw.stat(daily_name("U03")) is None
    labelled = cloud.app.state.list_symbols("e2e-csv")
    assert [r.symbol for r in labelled] == ["U01", "U02"]


def test_every_message_delivered_three_times_out_of_order_changes_nothing(
    cloud: Cloud, tmp_path: Path
) -> None:
    cloud.use("1")
    before = Counter(cloud.pull_finalized())
    request = IngestRequest(kind="backfill", run_id="dup-run", symbols=tuple(DUPS))
    cloud.proxy.copies = 3
    try:
        for _ in range(3):  # the request itself is published three times too
            cloud.publish(request)
        status = cloud.wait_run("dup-run")
        cloud.wait_derived(DUPS)
        wait_for("duplicate deliveries to finish", cloud.proxy.drained)
    finally:
        cloud.proxy.copies = 1
    assert all(o.status == "ok" for o in status.outcomes())
    # 3 publishes x 3 copies of the request, 2 batches x 3 copies at least
    assert cloud.proxy.count("dispatch") >= 9
    assert cloud.proxy.count("ingest") >= 6
    local = embedded(tmp_path, cloud.replay, "1", request)
    assert_same_lake(cloud.app, local, DUPS)
    time.sleep(2)  # any late notification would arrive now
    after = cloud.pull_finalized()
    assert {s: after[daily_name(s)] - before[daily_name(s)] for s in DUPS} == dict.fromkeys(DUPS, 1)
    # derived objects: built once each; every other delivery found them built and wrote nothing.
    # The weekly handler writes two objects (weekly, monthly), each only if its recorded source
    # generation is older: two racing deliveries can each win one of the two writes, so a
    # symbol's "built" count is 1 or 2 (never more), while the profile is one object: exactly 1.
    weekly, profile = cloud.builds("weekly"), cloud.builds("profile")
    assert all(weekly[daily_name(s)] in (1, 2) for s in DUPS), weekly
    assert {s: profile[daily_name(s)] for s in DUPS} == dict.fromkeys(DUPS, 1)


def test_eight_concurrent_ingests_of_one_symbol_lose_no_day(cloud: Cloud) -> None:
    cloud.use("1")
    recorded = ReplayProvider(cloud.replay, "1").recorded("C01")
    assert recorded is not None
    days = recorded.bars.column("date").to_pylist()
    chunks = [days[i::8] for i in range(8)]  # interleaved: every window's days are new
    windows = [(min(c), max(c)) for c in chunks]
    assert len({d for c in chunks for d in c}) == len(days)
    runs = [f"conc-{i}" for i in range(8)]
    for run_id, (start, end) in zip(runs, windows, strict=True):
        cloud.publish(
            IngestRequest(kind="backfill", run_id=run_id, symbols=("C01",), start=start, end=end)
        )
    for run_id in runs:
        cloud.wait_run(run_id)
    stored = cloud.app.read.bars("C01", "1d").table
    assert stored.column("date").to_pylist() == days
    bars, _ = decode_daily(cloud.app.raw.read(daily_name("C01")).data)  # type: ignore[union-attr]
    assert bars.equals(recorded.bars.select(bars.column_names).cast(bars.schema))


def test_restatement_replayed_through_the_stack_is_healed(cloud: Cloud, tmp_path: Path) -> None:
    symbols = ("GOOG", "AMZN")
    cloud.use("1")
    cloud.wait_run(cloud.publish(IngestRequest(kind="manual", run_id="rs-1", symbols=symbols)))
    cloud.use("2")
    healed = cloud.wait_run(
        cloud.publish(IngestRequest(kind="manual", run_id="rs-2", symbols=symbols))
    )
    cloud.wait_derived(list(symbols))
    assert {o.symbol: o.status for o in healed.outcomes()} == dict.fromkeys(symbols, "restated")
    for symbol in symbols:
        kinds = {k for r in cloud.app.state.restatements(symbol) for k in r.kinds}
        assert "split" in kinds, symbol
    local = embedded(tmp_path, cloud.replay, "1")
    run_embedded(local, IngestRequest(kind="manual", run_id="rs-1", symbols=symbols))
    assert isinstance(local.provider, ReplayProvider)
    local.provider.use("2")
    run_embedded(local, IngestRequest(kind="manual", run_id="rs-2", symbols=symbols))
    assert_same_lake(cloud.app, local, list(symbols))


def test_scheduled_audit_tick_heals_what_the_overlap_cannot_see(cloud: Cloud) -> None:
    """The audit's Scheduler payload on ingest-batches: the ingest function dispatches the
    day's slice of the universe as an audit run; its batches compare HIST's whole history with
    the provider's and heal a session restored later and a volume revised 20 sessions back,
    which the daily overlap never sees. Audit records go to Firestore; the profile shows them."""
    cloud.use("1")
    first = IngestRequest(kind="manual", run_id="hist-1", symbols=("HIST",), universe="hist")
    cloud.wait_run(cloud.publish(first))
    cloud.use("4")
    daily = IngestRequest(kind="manual", run_id="hist-2", symbols=("HIST",), universe="hist")
    (o,) = cloud.wait_run(cloud.publish(daily)).outcomes()
    assert o.status == "unchanged"  # both differences lie before the overlap
    tick = AuditTick(universe="hist").to_json()
    cloud.app.bus.publish(cloud.app.settings.ingest_batches_topic, tick)
    run_id = f"audit-{datetime.now(UTC).date().isoformat()}-hist"
    (o,) = cloud.wait_run(run_id).outcomes()
    assert o.status == "restated"
    assert o.restatement is not None
    assert o.restatement["kinds"] == ["volume_revision", "restored_session"]
    truth = load_chart(AAPL_2020).bars
    bars, _ = decode_daily(cloud.app.raw.read(daily_name("HIST")).data)  # type: ignore[union-attr]
    want = truth.select(bars.column_names).cast(bars.schema).drop_columns(["symbol"])
    assert bars.num_rows == truth.num_rows == 49
    assert bars.drop_columns(["symbol"]).equals(want)  # bar for bar: the provider's truth
    record = cloud.app.state.get_audits(["HIST"])["HIST"]
    assert record.verified_at is not None and record.pending == {}
    cloud.wait_derived(["HIST"])
    profile = cloud.app.state.get_profile("HIST")
    assert profile is not None and profile["verified_at"] == record.verified_at.isoformat()
    assert profile["gap_count"] == 0


def test_transient_failure_is_retried_to_success(cloud: Cloud) -> None:
    cloud.use("2")  # FLAKY answers HTTP 503 until stage 3
    run_id = cloud.publish(IngestRequest(kind="manual", run_id="flaky", symbols=("FLAKY",)))

    def failed_once() -> bool:
        status = cloud.app.state.get_run(run_id)
        return status is not None and any(o.retryable for o in status.outcomes())

    wait_for("the 503 to be recorded", failed_once)
    assert cloud.proxy.count("ingest") >= 1
    cloud.use("3")
    status = cloud.wait_run(run_id)
    assert [(o.symbol, o.status) for o in status.outcomes()] == [("FLAKY", "ok")]
    assert cloud.app.raw.stat(daily_name("FLAKY")) is not None


def test_permanent_failure_is_recorded_once_and_not_retried(cloud: Cloud) -> None:
    cloud.use("1")
    before = cloud.proxy.count("ingest")
    status = cloud.wait_run(
        cloud.publish(IngestRequest(kind="manual", run_id="gone", symbols=("GONE",)))
    )
    [outcome] = status.outcomes()
    assert (outcome.status, outcome.error_kind) == ("failed", "not_found")
    time.sleep(3)  # past the subscription's minimum backoff: a retry would have come
    assert cloud.proxy.count("ingest") - before == 1
    assert cloud.app.raw.stat(daily_name("GONE")) is None


def test_the_panel_function_rebuilds_the_panel_after_each_complete_run(cloud: Cloud) -> None:
    """The ingest that records a run's last batch publishes run-completed; the panel function
    (pushed by the `panel` subscription) brings panel/ up to date: it then equals the daily
    objects row for row (whatever earlier tests left in the lake)."""
    from barlake.core.layout import RAW_DAILY_PREFIX, symbol_of_daily
    from barlake.core.panel import MANIFEST_NAME, decode_manifest
    from test_panel import assert_panel_equals_objects

    cloud.use("1")
    run_id = cloud.publish(IngestRequest(kind="backfill", run_id="e2e-panel", symbols=("C01",)))
    cloud.wait_run(run_id)

    def up_to_date() -> bool:
        manifest = cloud.app.derived.read(MANIFEST_NAME)
        if manifest is None:
            return False
        table = decode_manifest(manifest.data)
        held = dict(zip(table["symbol"].to_pylist(), table["generation"].to_pylist(), strict=True))
        lake = {symbol_of_daily(i.name): i.generation for i in cloud.app.raw.list(RAW_DAILY_PREFIX)}
        return held == lake

    wait_for("the panel to catch up with the lake", up_to_date)
    assert_panel_equals_objects(cloud.app.raw, cloud.app.derived)
    log = Path(next(c.log for c in cloud.info.components if c.name == "fn-panel"))
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    assert any(x.get("outcome") == "done" for x in lines)
    assert not any(x.get("outcome") == "retry" and "Busy" not in x.get("error", "") for x in lines)


def test_dashboard_over_the_stack_shows_what_its_api_says(cloud: Cloud, browser: Any) -> None:
    """The dashboard served by the stack's api function (GCS, Firestore, Redis): the latest
    run with its failure by kind, the totals, and a chart holding every stored bar."""
    from browser import open_page

    cloud.use("1")
    run_id = "dashboard-e2e"
    status = cloud.wait_run(
        cloud.publish(IngestRequest(kind="manual", run_id=run_id, symbols=("W01", "GONE")))
    )
    assert {o.symbol: o.status for o in status.outcomes()} == {"W01": "ok", "GONE": "failed"}
    cloud.wait_derived(["W01"])
    api = cloud.info.url("fn-api").rstrip("/")

    def get(path: str) -> Any:
        with urllib.request.urlopen(f"{api}{path}", timeout=10) as r:
            return json.loads(r.read())

    w = open_page(browser, api, viewport={"width": 1280, "height": 900})
    w.goto("/dashboard")
    page = w.page
    assert page.get_attribute("#run", "data-run-id") == run_id
    assert page.get_attribute("[data-kind='not_found']", "data-kind") == "not_found"
    assert page.inner_text("#run-errors tbody tr td:first-child") == "GONE"
    totals = get("/v1/symbols?limit=1000")["totals"]
    assert page.get_attribute("#tile-symbols dd", "data-value") == str(totals["symbols"])
    assert page.get_attribute("#tile-rows dd", "data-value") == str(totals["rows"])
    w.goto("/dashboard#/symbol/W01?interval=1wk")
    page.wait_for_selector("#chart[data-candles]")
    weekly = get("/v1/bars/W01?format=json&interval=1wk")
    assert int(page.get_attribute("#chart", "data-candles")) == weekly["count"] > 5
    w.screenshot("dashboard-stack")
    assert w.problems == []


def test_cli_run_under_the_stack_env_follows_its_run_then_status_finds_a_fresh_backfill(
    cloud: Cloud, tmp_path: Path
) -> None:
    """`barlake run` after `eval "$(barlake stack env)"`: once a TypeError traceback, now it
    publishes and follows the run to its end; `status --run` right after `backfill` waits for
    dispatch to record the run instead of answering "no run"; `--lake` is refused."""
    cloud.use("1")
    env = {**os.environ, **cloud.info.env, "COLUMNS": "200"}

    def barlake(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "barlake.cli", *args],
            env={**env, **extra},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )

    ran = barlake("run", "W02", "GONE")
    assert ran.returncode == 1, ran.stderr  # GONE: not_found, the README's "some symbols failed"
    assert "ok 1 · unchanged 0 · restated 0 · rows quarantined 0 · failed 1" in ran.stdout
    assert "Traceback" not in ran.stderr
    assert cloud.app.raw.stat(daily_name("W02")) is not None

    sent = barlake("backfill", "W02", "--start", "2020-09-01")
    assert sent.returncode == 0, sent.stderr
    run_id = sent.stdout.split()[1].rstrip(":")
    status = barlake("status", "--run", run_id)  # at once: dispatch records it 1–7 s later
    assert status.returncode == 0, status.stderr
    assert f"run {run_id} (backfill)" in status.stdout
    cloud.wait_run(run_id)

    lines = barlake("run", "W02", BARLAKE_INGEST_REQUESTS_TOPIC="no-such-topic").stderr
    assert lines.strip().startswith("barlake: error: cannot publish to no-such-topic")
    assert len(lines.strip().splitlines()) == 1
    refused = barlake("status", "--lake", "lake")
    assert refused.returncode == 2 and "--lake names a local folder" in refused.stderr


def test_deadletter_list_and_replay_from_the_cli(cloud: Cloud, tmp_path: Path) -> None:
    """A run request dead-lettered from `dispatch` (as Pub/Sub does after the last attempt):
    `deadletter list` shows it and leaves it queued; `replay --run` republishes it to
    ingest-requests, where it runs to completion; then the queue holds none of that run."""
    from google.cloud import pubsub_v1

    cloud.use("1")
    env = {**os.environ, **cloud.info.env, "COLUMNS": "200"}

    def barlake(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "barlake.cli", "deadletter", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )

    run_id = "deadletter-e2e"
    request = IngestRequest(kind="manual", run_id=run_id, symbols=("W03",))
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(cloud.info.project, cloud.app.settings.dead_letter_topic)
    publisher.publish(
        topic,
        json.dumps(request.to_json()).encode(),
        CloudPubSubDeadLetterSourceSubscription="dispatch",
    ).result(timeout=30)
    for _ in range(2):  # listing twice: looking never takes a message off the queue
        listed = barlake("list", "--run", run_id)
        assert listed.returncode == 0, listed.stderr
        assert run_id in listed.stdout and "ingest-requests" in listed.stdout
        assert "W03" in listed.stdout
    assert cloud.app.state.get_run(run_id) is None
    replayed = barlake("replay", "--run", run_id)
    assert replayed.returncode == 0, replayed.stderr
    assert f"replayed 1 dead letters of run {run_id}" in replayed.stdout
    status = cloud.wait_run(run_id)
    assert [(o.symbol, o.status) for o in status.outcomes()] == [("W03", "ok")]
    after = barlake("list", "--run", run_id)
    assert after.returncode == 0 and f"no dead letters for run {run_id}" in after.stdout
