"""Universes end to end on the embedded lake: the CLI (import, list, show --as-of, add, remove,
export), `barlake run --universe NAME`, a scheduled tick naming a universe (point-in-time
members, one run per universe and day), and the API's /v1/universes routes."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result
from werkzeug.test import Client

from barlake.adapters.replay_provider import ReplayProvider
from barlake.api.app import build_api
from barlake.config import App, Settings, build_embedded, run_embedded
from barlake.messages import IngestRequest
from barlake.ports import SymbolRecord

NOW = datetime(2024, 3, 8, 23, 0, tzinfo=UTC)
SYMBOLS = ("AAA", "BBB", "CCC", "DDD", "EEE")
CSV = (
    "symbol,from,to\n"
    "# an index that dropped CCC and gained EEE\n"
    "AAA,,\n"
    "BBB,2010-01-04,\n"
    "CCC,2010-01-04,2024-01-02\n"
    "DDD,2010-01-04,\n"
    "EEE,2024-01-02,\n"
)


def replay(tmp_path: Path) -> Path:
    root = tmp_path / "replay"
    root.mkdir(exist_ok=True)
    for s in SYMBOLS:
        (root / f"{s}.csv").write_text(
            "Date,Open,High,Low,Close,Adj Close,Volume\n2024-03-04,10,11,9,10,10,100\n"
        )
    return root


def make_app(tmp_path: Path, **env: str) -> tuple[App, ReplayProvider]:
    provider = ReplayProvider(replay(tmp_path))
    settings = Settings.from_env({}, lake_dir=str(tmp_path / "lake"), batch_size="2", **env)
    return build_embedded(settings, provider=provider, clock=lambda: NOW), provider


def barlake(*args: str, cwd: Path) -> Result:
    """The CLI in-process (typer's runner), from `cwd`: what `barlake ARGS…` prints and exits."""
    from barlake.cli import app

    before = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    finally:
        os.chdir(before)


def test_scheduled_tick_runs_the_universe_members_of_its_day(tmp_path: Path) -> None:
    app, provider = make_app(tmp_path)
    app.universes.import_csv("idx", CSV, tags=["index"], source="csv:idx.csv")
    app.state.upsert_symbols([SymbolRecord("DDD", ("other",), ("x",), active=False)])
    tick = run_embedded(app, IngestRequest(kind="scheduled", universe="idx"))
    # Members on 2024-03-08: CCC left on 2024-01-02; DDD is inactive in the registry.
    assert tick.run.run_id == "scheduled-idx-2024-03-08-23"
    assert tick.complete and sorted(s for c in provider.calls for s in c[0]) == [
        "AAA",
        "BBB",
        "EEE",
    ]
    assert sorted(o.symbol for o in tick.outcomes()) == ["AAA", "BBB", "EEE"]
    registry = {r.symbol: r for r in app.state.list_symbols(active_only=False)}
    assert registry["EEE"].universes == ("idx",)
    assert registry["DDD"] == SymbolRecord("DDD", ("idx", "other"), ("x",), False)
    # A backfill as of a past day covers that day's members, the departed CCC included.
    past = run_embedded(
        app,
        IngestRequest(kind="backfill", run_id="bf-2015", universe="idx", end=date(2015, 6, 30)),
    )
    assert sorted(o.symbol for o in past.outcomes()) == ["AAA", "BBB", "CCC"]
    # The default universe's tick is a separate run of the same day.
    app.state.upsert_symbols([SymbolRecord("AAA", ("default", "idx"))])
    default = run_embedded(app, IngestRequest(kind="scheduled"))
    assert default.run.run_id == "scheduled-2024-03-08" and default.run.symbols == 1


def test_a_universe_not_stored_falls_back_to_the_registry_labels(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    app.state.upsert_symbols([SymbolRecord("BBB", ("legacy",))])
    tick = run_embedded(app, IngestRequest(kind="scheduled", universe="legacy"))
    assert [o.symbol for o in tick.outcomes()] == ["BBB"]


def test_cli_universe_lifecycle_and_run_by_name(tmp_path: Path) -> None:
    from barlake.core.universe import parse_csv

    lake = str(tmp_path / "lake")

    def cli(*args: str) -> Result:
        proc = barlake(*args, "--lake", lake, cwd=tmp_path)
        assert proc.exit_code == 0, proc.output
        return proc

    def members(as_of: str) -> list[str]:
        return json.loads(cli("universe", "show", "idx", "--as-of", as_of, "--json").stdout)[
            "symbols"
        ]

    (tmp_path / "idx.csv").write_text(CSV)
    imported = cli("universe", "import", "idx", "idx.csv", "--tag", "index")
    assert "imported 5 membership periods" in imported.stdout
    listed = cli("universe", "list", "--as-of", "2015-06-30").stdout
    assert "idx" in listed and "index" in listed and "csv:idx.csv" in listed
    assert members("2015-06-30") == ["AAA", "BBB", "CCC", "DDD"]
    assert parse_csv(cli("universe", "export", "idx").stdout) == parse_csv(CSV)
    cli("universe", "add", "idx", "fff", "--since", "2024-03-06")
    cli("universe", "remove", "idx", "BBB", "--on", "2024-03-05")
    assert members("2024-03-08") == ["AAA", "DDD", "EEE", "FFF"]
    assert members("2024-03-04") == ["AAA", "BBB", "DDD", "EEE"]
    # `barlake run --universe NAME`: the members on --end, from a replay folder.
    ran = cli(
        "run", "--universe", "idx", "--end", "2024-03-04", "--source", f"replay:{replay(tmp_path)}"
    )
    assert "ok 4 · unchanged 0" in ran.stdout
    daily = tmp_path / "lake" / "barlake-raw" / "daily"
    assert sorted(p.stem for p in daily.glob("*.parquet")) == ["AAA", "BBB", "DDD", "EEE"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["universe", "show", "nope"], 4, "no universe named 'nope'"),
        (["universe", "show", "Bad/Name"], 2, "universe name must be"),
        (["universe", "export", "nope"], 4, "no universe named 'nope'"),
        (["universe", "import", "idx", "missing.csv"], 2, "cannot read missing.csv"),
        (["universe", "import", "idx", "bad.csv"], 2, "bad.csv: line 2: 'from' must be a date"),
        (["universe", "remove", "nope", "AAA"], 4, "no universe named 'nope'"),
        (["universe", "show", "idx", "--as-of", "2024-13-01"], 2, "--as-of must be a date"),
        (["universe", "add", "idx", "A;B"], 2, "invalid symbol"),
        (["run", "--universe", "nope"], 4, "no universe named 'nope' and no such file"),
        (["run", "AAA", "--universe", "nope"], 2, "not both"),
    ],
)
def test_cli_bad_input_is_one_line_and_a_documented_exit_code(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    (tmp_path / "bad.csv").write_text("symbol,from\nAAA,2024-02-30\n")
    proc = barlake(*args, "--lake", str(tmp_path / "lake"), cwd=tmp_path)
    assert proc.exit_code == code, proc.output
    assert proc.stderr.startswith("barlake: error: ") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_api_lists_universes_and_members_as_of(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    app.universes.import_csv("idx", CSV, tags=["index"], source="csv:idx.csv")
    app.universes.add("crypto", ["BTC-USD"], date(2020, 1, 1))
    client = Client(build_api(app=app))
    listing = client.get("/v1/universes?as_of=2015-06-30")
    assert listing.status_code == 200
    rows = {u["name"]: u for u in listing.get_json()["universes"]}
    assert rows["idx"]["members"] == 4 and rows["idx"]["ever_members"] == 5
    assert rows["idx"]["tags"] == ["index"] and rows["crypto"]["members"] == 0
    one = client.get("/v1/universes/idx?as_of=2024-03-08")
    assert one.get_json()["symbols"] == ["AAA", "BBB", "DDD", "EEE"]
    assert one.get_json()["as_of"] == "2024-03-08"
    past = client.get("/v1/universes/idx?as_of=2015-06-30")
    assert past.get_json()["symbols"] == ["AAA", "BBB", "CCC", "DDD"]
    again = client.get(
        "/v1/universes/idx?as_of=2015-06-30", headers={"If-None-Match": past.headers["ETag"]}
    )
    assert again.status_code == 304
    for url, status, parameter in (
        ("/v1/universes/nope", 404, None),
        ("/v1/universes/Bad%20Name", 400, "name"),
        ("/v1/universes/idx?as_of=2015-02-30", 400, "as_of"),
        ("/v1/universes/idx?when=x", 400, "when"),
        ("/v1/universes?as_of=x", 400, "as_of"),
    ):
        r = client.get(url)
        assert r.status_code == status, url
        assert r.get_json()["error"].get("parameter") == parameter, url


def test_api_universes_need_the_key_when_keys_are_set(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, api_keys="k1")
    app.universes.import_csv("idx", CSV)
    client = Client(build_api(app=app))
    assert client.get("/v1/universes").status_code == 401
    assert client.get("/v1/universes/idx", headers={"X-API-Key": "k1"}).status_code == 200
    doc = client.get("/openapi.json").get_json()
    assert {"/v1/universes", "/v1/universes/{name}"} <= set(doc["paths"])
