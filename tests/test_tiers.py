"""Tiers: computed from the lake (20-session median dollar volume) after each daily write,
pinned by an admin (CLI and PUT /v1/tiers/{symbol} behind the key), kept as the universes
tier-1..3 that a scheduled tick runs as its slice."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner
from werkzeug.test import Client

from barlake.adapters.replay_provider import ReplayProvider
from barlake.api.app import build_api
from barlake.config import App, Settings, build_embedded, run_embedded
from barlake.core.tiers import median_dollar_volume, tier_for
from barlake.messages import IngestRequest
from conftest import weekdays

NOW = datetime(2024, 3, 8, 23, 0, tzinfo=UTC)
# close, volume → median dollar volume: BIG 200M (tier 1), MID 10M (tier 2), LOW 100 (tier 3)
SYMBOLS = {"BIG": (100.0, 2_000_000), "MID": (10.0, 1_000_000), "LOW": (1.0, 100)}


def test_median_dollar_volume_of_the_last_20_sessions() -> None:
    closes = [1.0] * 10 + [10.0] * 20
    volumes = [1_000_000_000] * 10 + [100, 200, 300] * 6 + [400, 500]
    bars = pa.table({"close": closes, "volume": pa.array(volumes, pa.int64())})
    # the 10 old huge days are outside the window; the window's median is 10 × 200
    assert median_dollar_volume(bars) == 2000.0
    assert median_dollar_volume(bars.slice(0, 0)) is None
    assert [tier_for(v) for v in (1e8, 99_999_999.0, 5e6, 4e6, None)] == [1, 2, 2, 3, 3]


def make_app(tmp_path: Path, **env: str) -> App:
    root = tmp_path / "replay"
    root.mkdir()
    for symbol, (close, volume) in SYMBOLS.items():
        rows = "".join(
            f"{d},{close},{close},{close},{close},{close},{volume}\n"
            for d in weekdays(date(2024, 2, 1), 25)
        )
        (root / f"{symbol}.csv").write_text("Date,Open,High,Low,Close,Adj Close,Volume\n" + rows)
    settings = Settings.from_env({}, lake_dir=str(tmp_path / "lake"), **env)
    app = build_embedded(settings, provider=ReplayProvider(root), clock=lambda: NOW)
    run_embedded(app, IngestRequest(kind="manual", run_id="load", symbols=tuple(SYMBOLS)))
    return app


def tiers(app: App, day: date | None = None) -> dict[str, list[str]]:
    return {f"tier-{t}": app.universes.show(f"tier-{t}", day)["symbols"] for t in (1, 2, 3)}


def test_tiers_follow_the_daily_write_and_drive_a_scheduled_slice(tmp_path: Path) -> None:
    app = make_app(tmp_path, api_keys="admin-key")
    assert tiers(app) == {"tier-1": ["BIG"], "tier-2": ["MID"], "tier-3": ["LOW"]}
    assert app.universes.show("tier-1")["source"] == "computed"
    client = Client(build_api(app=app))
    got = client.get("/v1/tiers/big", headers={"X-API-Key": "admin-key"}).get_json()
    assert got == {
        "symbol": "BIG",
        "tier": 1,
        "computed": 1,
        "override": None,
        "median_dollar_volume": 200_000_000.0,
        "sessions": 20,
    }
    # The admin pins LOW to tier 1 through the API (the key is required).
    body = json.dumps({"tier": 1})
    assert client.put("/v1/tiers/LOW", data=body).status_code == 401
    pinned = client.put(
        "/v1/tiers/LOW",
        data=body,
        headers={"X-API-Key": "admin-key"},
        content_type="application/json",
    )
    assert pinned.status_code == 200
    assert pinned.get_json() | {"median_dollar_volume": None} == {
        "symbol": "LOW",
        "tier": 1,
        "computed": 3,
        "override": 1,
        "median_dollar_volume": None,
        "sessions": 20,
    }
    assert tiers(app) == {"tier-1": ["BIG", "LOW"], "tier-2": ["MID"], "tier-3": []}
    # The pin survives the next daily write's recomputation.
    run_embedded(
        app, IngestRequest(kind="manual", run_id="again", symbols=tuple(SYMBOLS), full=True)
    )
    assert tiers(app)["tier-1"] == ["BIG", "LOW"]
    # tier-1's scheduled tick is the tier's slice of the fan-out.
    tick = run_embedded(app, IngestRequest(kind="scheduled", universe="tier-1"))
    assert tick.run.run_id == "scheduled-tier-1-2024-03-08-23"
    assert sorted(o.symbol for o in tick.outcomes()) == ["BIG", "LOW"]
    for data, parameter in (
        ('{"tier": 4}', "tier"),
        ('{"tier": true}', "tier"),
        ('{"level": 1}', "body"),
        ("not json", "body"),
        ("", "body"),
    ):
        r = client.put("/v1/tiers/LOW", data=data, headers={"X-API-Key": "admin-key"})
        assert r.status_code == 400 and r.get_json()["error"]["parameter"] == parameter, data
    unpinned = client.put(
        "/v1/tiers/LOW", data='{"tier": null}', headers={"X-API-Key": "admin-key"}
    )
    assert unpinned.get_json()["tier"] == 3
    assert tiers(app)["tier-3"] == ["LOW"]


def test_tier_history_is_point_in_time(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    later = NOW + timedelta(days=3)
    app.clock = lambda: later  # type: ignore[method-assign]
    app.tiers.clock = app.clock
    app.universes.clock = app.clock
    app.tiers.pin("MID", 1)
    assert tiers(app, later.date())["tier-1"] == ["BIG", "MID"]
    assert tiers(app, NOW.date())["tier-1"] == ["BIG"]  # before the pin
    assert tiers(app, NOW.date())["tier-2"] == ["MID"]


def test_cli_tier_set_show_clear(tmp_path: Path) -> None:
    make_app(tmp_path)
    from barlake.cli import app

    lake = ["--lake", str(tmp_path / "lake")]
    runner = CliRunner()
    r = runner.invoke(app, ["tier", "set", "mid", "1", *lake], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "MID: tier 1 (pinned; computed 2)" in r.stdout, r.output
    shown = json.loads(runner.invoke(app, ["tier", "show", "MID", "BIG", "--json", *lake]).stdout)
    assert [(x["symbol"], x["tier"], x["override"]) for x in shown] == [
        ("MID", 1, 1),
        ("BIG", 1, None),
    ]
    assert "MID: tier 2" in runner.invoke(app, ["tier", "clear", "MID", *lake]).stdout
    bad = runner.invoke(app, ["tier", "set", "MID", "5", *lake])
    assert bad.exit_code == 2 and "tier must be 1, 2 or 3" in bad.stderr
    r = runner.invoke(app, ["tier", "recompute", *lake])
    assert r.exit_code == 0 and "3 symbols: tier 1 1 · tier 2 1 · tier 3 1" in r.stdout


@pytest.mark.parametrize("tier", [0, 4])
def test_pin_refuses_a_tier_outside_1_to_3(tmp_path: Path, tier: int) -> None:
    app = make_app(tmp_path)
    with pytest.raises(ValueError, match="tier must be one of 1, 2, 3"):
        app.tiers.pin("BIG", tier)


def test_pinning_is_disabled_without_api_keys(tmp_path: Path) -> None:
    """An admin action is never open to whoever reaches the API (README "API")."""
    app = make_app(tmp_path)
    client = Client(build_api(app=app))
    r = client.put("/v1/tiers/LOW", data=json.dumps({"tier": 1}))
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "admin_disabled"
    assert client.get("/v1/tiers/LOW").get_json()["override"] is None
