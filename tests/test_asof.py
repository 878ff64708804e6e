"""As-of reads: after a restatement rewrites a symbol's history, `?as_of=` (and
`barlake show --as-of`) return the bars exactly as the lake held them before, naming the
generation read; from the embedded store's kept versions."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.compute as pc
import pytest

from apilake import Lake, open_lake, stages
from barlake.core.codec import decode_daily
from barlake.core.layout import daily_name
from barlake.services.asof import parse_as_of, version_at
from test_config_cli import barlake


def _instant() -> str:
    time.sleep(0.002)  # generations are microsecond clocks: keep the instant strictly between
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    time.sleep(0.002)
    return now


@pytest.fixture(scope="module")
def restated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, str, str, dict]:
    """GOOG stored from recording 1, then restated (20:1 split) by recording 2."""
    lake_dir = tmp_path_factory.mktemp("asof") / "lake"
    lake = open_lake(lake_dir, stages()[0])
    before_any = _instant()
    lake.ingest("GOOG")
    between = _instant()
    first = lake.app.raw.read(daily_name("GOOG"))
    assert first is not None
    lake.provider.advance()
    lake.ingest("GOOG")
    assert lake.app.raw.stat(daily_name("GOOG")).generation != first.info.generation  # type: ignore[union-attr]
    return lake, before_any, between, {"generation": first.info.generation, "data": first.data}


def test_as_of_returns_the_generation_before_the_restatement(restated) -> None:
    lake, _, between, first = restated
    now = lake.get("/v1/bars/GOOG?limit=100000").get_json()
    old = lake.get(f"/v1/bars/GOOG?limit=100000&as_of={between}")
    assert old.status_code == 200, old.get_json()
    body = old.get_json()
    assert body["generation"] == first["generation"] != now["generation"]
    assert old.headers["ETag"].startswith(f'"{first["generation"]}-')
    bars, _ = decode_daily(first["data"])
    assert [b["date"] for b in body["bars"]] == [d.isoformat() for d in bars["date"].to_pylist()]
    assert [b["close"] for b in body["bars"]] == bars["close"].to_pylist()
    assert body["bars"] != now["bars"][: len(body["bars"])]  # the split restated those closes
    # the same read again: 304 on its ETag; Parquet is the stored version's rows
    again = lake.get(
        f"/v1/bars/GOOG?limit=100000&as_of={between}",
        headers={"If-None-Match": old.headers["ETag"]},
    )
    assert again.status_code == 304
    # weekly bars of that version, aggregated from it
    weekly = lake.get(f"/v1/bars/GOOG?interval=1wk&as_of={between}").get_json()
    assert weekly["generation"] == first["generation"]
    assert weekly["bars"][-1]["date"] <= body["bars"][-1]["date"]


def test_as_of_now_is_the_current_generation_and_before_any_write_is_404(restated) -> None:
    lake, before_any, _, _ = restated
    now = lake.get("/v1/bars/GOOG").get_json()
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert (
        lake.get("/v1/bars/GOOG", query_string={"as_of": later}).get_json()["generation"]
        == (now["generation"])
    )
    missing = lake.get(f"/v1/bars/GOOG?as_of={before_any}")
    assert missing.status_code == 404
    batch = lake.get(f"/v1/bars?symbols=GOOG&as_of={before_any}")
    assert batch.status_code == 404


@pytest.mark.parametrize(
    "value", ["2025-08-20", "yesterday", "2025-08-20T00:00:00", "2025-13-01T00:00Z"]
)
def test_a_bad_as_of_is_a_400_naming_the_parameter(restated, value: str) -> None:
    lake = restated[0]
    reply = lake.get("/v1/bars/GOOG", query_string={"as_of": value})
    assert reply.status_code == 400
    assert reply.get_json()["error"]["parameter"] == "as_of"


def test_the_read_service_and_the_cli_read_as_of(restated) -> None:
    lake, _, between, first = restated
    result = lake.app.read.bars("GOOG", as_of=parse_as_of(between), limit=None)
    assert result.generation == first["generation"]
    assert result.table.equals(decode_daily(first["data"])[0])
    lake_dir = Path(lake.app.settings.lake_dir)
    proc = barlake("show", "GOOG", "--as-of", between, "--lake", str(lake_dir), cwd=lake_dir)
    assert proc.returncode == 0, proc.stderr
    assert f"generation {first['generation']}" in proc.stdout and "as of" in proc.stdout
    bad = barlake("show", "GOOG", "--as-of", "2025-08-20", "--lake", str(lake_dir), cwd=lake_dir)
    assert bad.returncode == 2 and "barlake: error: --as-of" in bad.stderr


def test_version_at_picks_the_version_live_then(restated) -> None:
    lake = restated[0]
    versions = lake.app.raw.versions(daily_name("GOOG"))
    assert (len(versions) == 2 and versions[0].noncurrent_since == versions[1].created) or (
        versions[0].noncurrent_since is not None
    )
    at = versions[0].noncurrent_since
    assert version_at(versions, at) == versions[1]  # replaced at that instant: the new one
    assert version_at(versions, at - timedelta(microseconds=1)) == versions[0]
    assert version_at(versions, versions[0].created - timedelta(microseconds=1)) is None
    assert pc.sum(
        decode_daily(lake.app.raw.read_version(daily_name("GOOG"), versions[0].generation).data)[0][
            "volume"
        ]
    ).as_py()  # type: ignore[union-attr]
