"""Reconciliation against a second provider: the core comparison's laws, and `barlake reconcile`
end to end (a lake ingested from a real Yahoo recording, Tiingo through its real HTTP client
against a local server). The Tiingo body is synthesized from the Yahoo recording with three
planted disagreements: one close moved 1%, one session missing, the dividend changed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.test import Client

from barlake.adapters.replay_provider import ReplayProvider
from barlake.adapters.yahoo_chart import load_chart
from barlake.api.app import build_api
from barlake.config import App, Settings, build_embedded, run_embedded
from barlake.core.crosscheck import reconcile
from barlake.core.schema import BAR_SCHEMA, actions_from_pylist, empty_actions
from barlake.messages import IngestRequest
from conftest import FIXTURES
from provider_server import json_answer, serve

AAPL = FIXTURES / "chart_api" / "chart-AAPL-2020-08-31-to-2020-11-07.json"
MOVED, DROPPED, EX_DATE = date(2020, 9, 15), date(2020, 10, 1), date(2020, 11, 6)


def tiingo_body() -> list[dict]:
    rec = load_chart(AAPL)
    events = {(a["date"], a["kind"]): a["value"] for a in rec.actions.to_pylist()}
    rows = []
    for b in rec.bars.to_pylist():
        if b["date"] == DROPPED:
            continue
        close = b["close"] * (1.01 if b["date"] == MOVED else 1.0)
        rows.append(
            {
                "date": f"{b['date'].isoformat()}T00:00:00.000Z",
                "open": b["open"],
                "high": max(b["high"], close),
                "low": b["low"],
                "close": close,
                "volume": b["volume"],
                "adjClose": b["adj_close"],
                "divCash": 0.25 if b["date"] == EX_DATE else 0.0,
                "splitFactor": events.get((b["date"], "split"), 1.0),
            }
        )
    return rows


bar_rows = st.lists(
    st.tuples(
        st.dates(date(2000, 1, 1), date(2000, 12, 31)),
        st.floats(0.01, 1e5),
        st.integers(0, 10**9),
    ),
    max_size=30,
    unique_by=lambda r: r[0],
)


def _table(rows: list[tuple[date, float, int]]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "symbol": "X",
                "date": d,
                "open": p,
                "high": p,
                "low": p,
                "close": p,
                "adj_close": p,
                "volume": v,
            }
            for d, p, v in sorted(rows)
        ],
        schema=BAR_SCHEMA,
    )


@given(bar_rows)
def test_a_lake_agrees_with_itself(rows: list[tuple[date, float, int]]) -> None:
    table = _table(rows)
    report = reconcile(table, empty_actions(), table, empty_actions())
    assert report["disagreements"] == [] and report["sessions"] == len(rows)


@given(bar_rows, st.data())
def test_every_planted_difference_is_named(rows: list[tuple[date, float, int]], data) -> None:
    if len(rows) < 3:
        return
    rows = sorted(rows)
    i = data.draw(st.integers(1, len(rows) - 2))  # inside the common window
    d, price, volume = rows[i]
    other = [*rows[:i], (d, price * 1.5, volume), *rows[i + 1 :]]
    report = reconcile(_table(rows), empty_actions(), _table(other), empty_actions())
    assert {(x["date"], x["kind"]) for x in report["disagreements"]} == {(d.isoformat(), "price")}
    missing = [r for j, r in enumerate(rows) if j != i]
    report = reconcile(_table(rows), empty_actions(), _table(missing), empty_actions())
    assert report["disagreements"] == [
        {"date": d.isoformat(), "kind": "missing_session", "side": "lake"}
    ]


def test_actions_and_tolerance() -> None:
    table = _table([(date(2000, 1, 3), 10.0, 100), (date(2000, 1, 4), 10.0, 100)])
    close_enough = _table([(date(2000, 1, 3), 10.005, 104), (date(2000, 1, 4), 10.0, 100)])
    assert reconcile(table, empty_actions(), close_enough, empty_actions())["counts"] == {}
    ours = actions_from_pylist("X", [(date(2000, 1, 4), "dividend", 0.5)])
    theirs = actions_from_pylist("X", [(date(2000, 1, 4), "dividend", 0.6)])
    report = reconcile(table, ours, table, theirs)
    assert report["disagreements"] == [
        {
            "date": "2000-01-04",
            "kind": "corporate_action",
            "action": "dividend",
            "lake": 0.5,
            "other": 0.6,
        }
    ]


def test_cli_reconcile_against_tiingo_is_kept_in_the_profile(tmp_path: Path) -> None:
    app, _, lake = _stored_aapl(tmp_path)
    with serve() as server:
        server.route("/tiingo/daily/AAPL/prices", json_answer(tiingo_body()))
        env = _tiingo_env(lake, server.url)
        proc = subprocess.run(
            [sys.executable, "-m", "barlake.cli", "reconcile", "AAPL", "--against", "tiingo"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert server.seen[0].query["startDate"] == "2020-08-31"  # the first stored date
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "missing_session 1" in proc.stdout and "price 1" in proc.stdout
    report = app.state.get_profile("AAPL")["reconciliation"]
    assert report["against"] == "tiingo"
    assert report["counts"] == {"price": 1, "missing_session": 1, "corporate_action": 1}
    kinds = {(d["date"], d["kind"]) for d in report["disagreements"]}
    assert kinds == {
        (MOVED.isoformat(), "price"),
        (DROPPED.isoformat(), "missing_session"),
        (EX_DATE.isoformat(), "corporate_action"),
    }
    served = Client(build_api(app=app)).get("/v1/profiles/AAPL").get_json()
    assert served["reconciliation"] == report
    # A later profile rebuild keeps the last reconciliation.
    assert app.profile.handle(_finalized(app)) == "built"
    assert app.state.get_profile("AAPL")["reconciliation"] == report
    assert Client(build_api(app=app)).get("/v1/profiles/AAPL").get_json()["reconciliation"] == (
        report
    )


def _stored_aapl(tmp_path: Path) -> tuple[App, Path, Path]:
    """An embedded lake holding the recorded AAPL history (replayed), and the replay folder."""
    replay = tmp_path / "replay"
    replay.mkdir()
    shutil.copy(AAPL, replay / "AAPL.json")
    lake = tmp_path / "lake"
    app = build_embedded(
        Settings.from_env({}, lake_dir=str(lake)),
        provider=ReplayProvider(replay),
        clock=lambda: datetime(2026, 11, 21, 12, tzinfo=UTC),
    )
    run_embedded(app, IngestRequest(kind="manual", run_id="r1", symbols=("AAPL",)))
    return app, replay, lake


def _tiingo_env(lake: Path, url: str) -> dict[str, str]:
    return {
        **os.environ,
        "BARLAKE_LAKE_DIR": str(lake),
        "BARLAKE_TIINGO_URL": url,
        "BARLAKE_TIINGO_TOKEN": "t" * 40,
        "COLUMNS": "200",
    }


def _finalized(app):
    """The daily object's finalize event again, with the profile object gone: a rebuild."""
    from barlake.core.layout import daily_name, profile_name
    from barlake.messages import ObjectFinalized

    app.derived.delete(profile_name("AAPL"))
    info = app.raw.stat(daily_name("AAPL"))
    return ObjectFinalized(app.raw.bucket, info.name, info.generation, dict(info.metadata))


def test_cli_reconcile_refuses_a_chain_and_unknown_providers(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "barlake.cli", "reconcile", "AAPL", "--against", "yahoo,tiingo"],
        env={**os.environ, "BARLAKE_LAKE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "--against must be one of" in proc.stderr


def test_cli_audit_against_tiingo_cross_checks_the_audited_symbols(tmp_path: Path) -> None:
    """The audit's option: whole histories re-verified with the primary, then compared with a
    second provider, the report kept in the profile like `barlake reconcile`'s."""
    app, replay, lake = _stored_aapl(tmp_path)
    with serve() as server:
        server.route("/tiingo/daily/AAPL/prices", json_answer(tiingo_body()))
        env = _tiingo_env(lake, server.url)
        args = ["audit", "AAPL", "--source", f"replay:{replay}", "--against", "tiingo"]
        proc = subprocess.run(
            [sys.executable, "-m", "barlake.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "history audit" in proc.stdout and "reconciliation against tiingo" in proc.stdout
    assert app.state.get_audits(["AAPL"])["AAPL"].verified_at is not None
    report = app.state.get_profile("AAPL")["reconciliation"]
    assert report["counts"] == {"price": 1, "missing_session": 1, "corporate_action": 1}
    bad = subprocess.run(
        [sys.executable, "-m", "barlake.cli", "audit", "AAPL", "--against", "stooq"],
        env={**os.environ, "BARLAKE_LAKE_DIR": str(lake)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "--against must be one of" in bad.stderr
