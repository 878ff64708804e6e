"""The function entry points: event shapes, the age cutoff, retry vs acknowledge.

Driven through functions-framework's own app (the same HTTP → CloudEvent conversion the local
stack and Cloud Run use) over the embedded lake, so no emulator is needed here; the emulator
end-to-end is tests/test_e2e_stack.py.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import functions_framework
import pytest

import barlake
from barlake import cloudfn
from barlake.adapters.replay_provider import clone_recording
from barlake.config import App, Settings, build_embedded, run_embedded
from barlake.core.layout import daily_name, period_name
from barlake.messages import IngestRequest

ROOT = Path(__file__).resolve().parents[1]
AAPL_2020 = Path(barlake.__file__).parent / "demo_data/1-recorded-2021-11-22/AAPL.json"


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    replay = tmp_path / "replay"
    clone_recording(AAPL_2020, "AAA", replay)
    clone_recording(AAPL_2020, "FLAKY", replay, status=503)
    env = {"BARLAKE_LAKE_DIR": str(tmp_path / "lake"), "BARLAKE_PROVIDER": f"replay:{replay}"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(cloudfn, "_app", None)
    app = cloudfn.app()  # what the function instance builds from its environment
    yield app
    monkeypatch.setattr(cloudfn, "_app", None)


def client(name: str) -> Any:
    source = ROOT / "functions" / name / "main.py"
    return functions_framework.create_app(name, str(source), "cloudevent").test_client()


def push(data: dict[str, Any], attributes: dict[str, str] | None = None, **message: Any) -> dict:
    """The Pub/Sub push envelope, as the emulator (and Pub/Sub) POSTs it."""
    return {
        "subscription": "projects/p/subscriptions/s",
        "message": {
            "data": base64.b64encode(json.dumps(data).encode()).decode(),
            "attributes": attributes or {},
            "messageId": "m-1",
            "publishTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            **message,
        },
    }


def storage_event(resource: dict[str, Any], when: datetime | None = None) -> tuple[dict, dict]:
    """A structured Eventarc storage CloudEvent: (headers, body)."""
    headers = {
        "ce-id": "e-1",
        "ce-specversion": "1.0",
        "ce-type": cloudfn.STORAGE_FINALIZED,
        "ce-source": "//storage.googleapis.com/projects/_/buckets/barlake-raw",
        "ce-time": (when or datetime.now(UTC)).isoformat(),
        "Content-Type": "application/json",
    }
    return headers, resource


def ingest_once(app: App) -> None:
    run_embedded(app, IngestRequest(kind="manual", run_id="seed", symbols=("AAA",)))


def test_a_push_envelope_dispatches_a_run(lake: App) -> None:
    request = IngestRequest(kind="backfill", run_id="bf-1", symbols=("AAA",))
    resp = client("dispatch").post("/", json=push(request.to_json()))
    assert resp.status_code == 200
    status = lake.read.run("bf-1")
    assert status.run.symbols == 1 and status.run.batch_symbols == (("AAA",),)


def test_a_batch_with_a_transient_failure_answers_500_after_recording(lake: App) -> None:
    batch = {"version": 1, "run_id": "r", "batch_id": "r-b0", "symbols": ["FLAKY", "AAA"]}
    resp = client("ingest").post("/", json=push(batch))
    assert resp.status_code == 500  # Pub/Sub redelivers
    record = lake.state.get_batch("r", "r-b0")
    assert record is not None
    assert {o.symbol: (o.status, o.error_kind) for o in record.outcomes} == {
        "AAA": ("ok", None),
        "FLAKY": ("failed", "transient"),
    }


@pytest.mark.parametrize(
    "envelope",
    [
        {"subscription": "s", "message": {"data": "!!not base64!!", "messageId": "1"}},
        {
            "subscription": "s",
            "message": {"data": base64.b64encode(b"[1,").decode(), "messageId": "1"},
        },
        push({"version": 99, "run_id": "r", "batch_id": "b", "symbols": ["AAA"]}),
        push({"version": 1, "run_id": "r", "batch_id": "b", "symbols": ["../etc"]}),
    ],
    ids=["bad-base64", "bad-json", "unknown-version", "bad-symbol"],
)
def test_malformed_messages_are_acknowledged_not_retried(lake: App, envelope: dict) -> None:
    assert client("ingest").post("/", json=envelope).status_code == 200
    assert lake.state.get_batch("r", "b") is None


def test_events_past_the_age_cutoff_are_acknowledged_without_work(lake: App) -> None:
    old = (datetime.now(UTC) - timedelta(days=2)).isoformat().replace("+00:00", "Z")
    request = IngestRequest(kind="backfill", run_id="late", symbols=("AAA",))
    resp = client("dispatch").post("/", json=push(request.to_json(), publishTime=old))
    assert resp.status_code == 200
    assert lake.state.get_run("late") is None


def test_weekly_accepts_an_eventarc_storage_event(lake: App) -> None:
    ingest_once(lake)
    name = period_name("AAA", "1wk")
    assert lake.derived.delete(name)
    info = lake.raw.stat(daily_name("AAA"))
    assert info is not None
    resource = {"bucket": "barlake-raw", "name": info.name, "generation": str(info.generation)}
    headers, body = storage_event(resource)
    assert client("weekly").post("/", headers=headers, json=body).status_code == 200
    rebuilt = lake.derived.stat(name)
    assert rebuilt is not None and rebuilt.metadata["source_generation"] == str(info.generation)


def test_weekly_accepts_a_gcs_notification_carried_by_pubsub(lake: App) -> None:
    """fake-gcs-server's (and GCS's Pub/Sub notification) shape: attributes name the object,
    data is the object resource."""
    ingest_once(lake)
    name = period_name("AAA", "1mo")
    assert lake.derived.delete(name)
    info = lake.raw.stat(daily_name("AAA"))
    assert info is not None
    attributes = {
        "bucketId": "barlake-raw",
        "objectId": info.name,
        "objectGeneration": str(info.generation),
        "eventType": "OBJECT_FINALIZE",
        "payloadFormat": "JSON_API_V1",
    }
    resource = {"bucket": "barlake-raw", "name": info.name, "generation": str(info.generation)}
    assert client("weekly").post("/", json=push(resource, attributes)).status_code == 200
    assert lake.derived.stat(name) is not None


def test_an_event_for_a_generation_not_yet_visible_is_retried(lake: App) -> None:
    ingest_once(lake)
    info = lake.raw.stat(daily_name("AAA"))
    assert info is not None
    resource = {"bucket": "barlake-raw", "name": info.name, "generation": str(info.generation + 1)}
    headers, body = storage_event(resource)
    assert client("profile").post("/", headers=headers, json=body).status_code == 500


def test_a_stale_event_does_no_harm_and_no_write(lake: App) -> None:
    ingest_once(lake)
    info = lake.raw.stat(daily_name("AAA"))
    built = lake.derived.stat(period_name("AAA", "1wk"))
    assert info is not None and built is not None
    resource = {"bucket": "barlake-raw", "name": info.name, "generation": str(info.generation - 1)}
    headers, body = storage_event(resource)
    assert client("weekly").post("/", headers=headers, json=body).status_code == 200
    assert lake.derived.stat(period_name("AAA", "1wk")) == built


def test_not_a_finalize_event_is_dropped(lake: App) -> None:
    attributes = {"eventType": "OBJECT_DELETE", "objectId": "daily/AAA.parquet"}
    resource = {"bucket": "barlake-raw", "name": "daily/AAA.parquet", "generation": "1"}
    assert client("profile").post("/", json=push(resource, attributes)).status_code == 200


def test_function_logs_are_json_lines_with_function_and_outcome(lake: App) -> None:
    stream = io.StringIO()
    handler = cloudfn.configure_logging(stream)
    assert handler is not None
    try:
        request = IngestRequest(kind="backfill", run_id="bf-log", symbols=("AAA",))
        client("dispatch").post("/", json=push(request.to_json()))
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [line for line in lines if line.get("function") == "dispatch"]
    assert mine[-1]["outcome"] == "done" and mine[-1]["severity"] == "INFO"
    assert mine[-1]["result"] == "bf-log"
    # where the time went: the state store (the registry and the run ledger), and in total
    assert mine[-1]["ms"] >= mine[-1]["state_ms"] > 0


def test_logging_is_left_alone_outside_a_function_runtime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("K_SERVICE", raising=False)
    assert cloudfn.configure_logging() is None


def test_the_embedded_settings_build_the_same_app_shape(tmp_path: Path) -> None:
    app = build_embedded(Settings.from_env({}, lake_dir=str(tmp_path)))
    assert sorted(cloudfn.HANDLERS) == ["dispatch", "ingest", "profile", "weekly"]
    assert app.settings.max_event_age_seconds == "21600"
