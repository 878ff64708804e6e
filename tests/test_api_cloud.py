"""The API over the cloud adapters: fake-gcs-server for the buckets, the Firestore emulator for
state, real Redis for the cache — what `barlake serve` gets with the local stack's settings
and the deployed function with Terraform's. A writer instance ingests; a separate reader
instance answers, fresh after each write."""

from __future__ import annotations

import json
import uuid

import pytest
from werkzeug.test import Client

from apilake import DEMO_DATA, SYMBOLS
from barlake.adapters.replay_provider import ReplayProvider
from barlake.api.app import build_api
from barlake.config import Settings, build_app, run_embedded
from barlake.core.layout import daily_name
from barlake.messages import IngestRequest, ObjectFinalized
from conftest import EMULATOR_PROJECT


@pytest.fixture
def cloud_settings(
    gcs_emulator, firestore_emulator, emulator_env, redis_url: str
) -> dict[str, str]:
    emulator_env(gcs_emulator)
    emulator_env(firestore_emulator)
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    tag = uuid.uuid4().hex[:10]
    env = {
        "storage": "gcs",
        "state": "firestore",
        "project": f"{EMULATOR_PROJECT}-{tag}",  # a project of its own: nothing shared
        "raw_bucket": f"raw-{tag}",
        "derived_bucket": f"derived-{tag}",
        "cache": "redis",
        "redis_url": redis_url,
    }
    client = storage.Client(project=env["project"], credentials=AnonymousCredentials())
    for bucket in (env["raw_bucket"], env["derived_bucket"]):
        client.create_bucket(bucket)
    return env


def ingest(app, run_id: str) -> None:
    """A run as the functions do it: dispatch → ingest, then weekly + profile per object
    (the in-process bus carries the messages; GCS's finalize events are replayed by hand)."""
    status = run_embedded(app, IngestRequest(kind="manual", run_id=run_id, symbols=SYMBOLS))
    assert status.complete
    for symbol in SYMBOLS:
        info = app.raw.stat(daily_name(symbol))
        event = ObjectFinalized(app.raw.bucket, info.name, info.generation)
        app.weekly.handle(event)
        app.profile.handle(event)


def get(client: Client, url: str) -> tuple[int, dict, dict]:
    r = client.get(url)
    return r.status_code, dict(r.headers), json.loads(r.get_data())


def test_api_over_gcs_firestore_and_redis_is_fresh_after_each_write(cloud_settings) -> None:
    provider = ReplayProvider(DEMO_DATA)
    writer = build_app(
        Settings.from_env({}, events="inprocess", **cloud_settings), provider=provider
    )
    ingest(writer, "cloud-1")
    reader = Client(build_api(Settings.from_env({}, events="inprocess", **cloud_settings)))

    status, headers, body = get(reader, "/v1/bars/MSFT?limit=1")
    stored = writer.raw.stat(daily_name("MSFT"))
    assert status == 200 and headers["ETag"].startswith(f'"{stored.generation}-')
    assert body["bars"][0]["date"] == "2025-08-14" and headers["X-Cache"] == "miss"
    assert get(reader, "/v1/bars/MSFT?limit=1")[1]["X-Cache"] == "hit-l1"
    weekly = get(reader, "/v1/bars/MSFT?interval=1wk&limit=1")[2]
    assert weekly["bars"][0]["date"] == "2025-08-11" and weekly["bars"][0]["sessions"] == 4
    assert get(reader, "/v1/profiles/MSFT")[2]["generation"] == stored.generation
    run = get(reader, "/v1/runs/latest")[2]
    assert run["run_id"] == "cloud-1" and run["complete"] is True
    health = get(reader, "/v1/health")[2]
    assert [health[k]["status"] for k in ("storage", "state", "cache")] == ["ok"] * 3

    provider.advance()
    status = run_embedded(writer, IngestRequest(kind="manual", run_id="cloud-2", symbols=SYMBOLS))
    assert status.complete  # the raw objects changed; weekly/ and profiles/ not rebuilt yet
    assert get(reader, "/v1/bars/MSFT?limit=1")[2]["bars"][0]["date"] == "2025-08-15"
    weekly = get(reader, "/v1/bars/MSFT?interval=1wk&limit=1")[2]
    assert weekly["bars"][0]["date"] == "2025-08-11" and weekly["bars"][0]["sessions"] == 5
    assert get(reader, "/v1/bars/GOOG")[2]["bars"][0]["close"] == 68.36849975585938
    assert get(reader, "/v1/runs/latest")[2]["run_id"] == "cloud-2"
