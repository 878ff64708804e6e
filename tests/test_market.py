"""Market status from exchange_calendars (barlake.core.market), through the API and the CLI:
an early close (XNYS, 2025-11-28, the day after Thanksgiving: 13:00 ET), a holiday
(2025-12-25), a weekend, before the open, after the close, a lunch break (XTKS), 24/7 crypto."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner
from werkzeug.test import Client

from barlake.api.app import build_api
from barlake.config import Settings, build_embedded
from barlake.core.market import UnknownExchangeError, status

T = datetime.fromisoformat


@pytest.mark.parametrize(
    ("at", "state", "reason", "early", "next_open", "next_close"),
    [
        # The early close: open at 10:00 ET, closed at 13:30 ET, next open Monday.
        ("2025-11-28T15:00:00Z", "open", "open", True, "2025-12-01T14:30", "2025-11-28T18:00"),
        (
            "2025-11-28T18:30:00Z",
            "closed",
            "after_close",
            True,
            "2025-12-01T14:30",
            "2025-12-01T21:00",
        ),
        # Christmas: a weekday that is not a session.
        (
            "2025-12-25T15:00:00Z",
            "closed",
            "holiday",
            False,
            "2025-12-26T14:30",
            "2025-12-26T21:00",
        ),
        (
            "2025-11-29T15:00:00Z",
            "closed",
            "weekend",
            False,
            "2025-12-01T14:30",
            "2025-12-01T21:00",
        ),
        (
            "2025-12-01T14:29:59Z",
            "closed",
            "before_open",
            False,
            "2025-12-01T14:30",
            "2025-12-01T21:00",
        ),
        ("2025-12-01T14:30:00Z", "open", "open", False, "2025-12-02T14:30", "2025-12-01T21:00"),
        (
            "2025-12-01T21:00:00Z",
            "closed",
            "after_close",
            False,
            "2025-12-02T14:30",
            "2025-12-02T21:00",
        ),
        # Summer time: the open is 13:30 UTC.
        ("2025-07-01T13:45:00Z", "open", "open", False, "2025-07-02T13:30", "2025-07-01T20:00"),
    ],
)
def test_xnys_status(
    at: str, state: str, reason: str, early: bool, next_open: str, next_close: str
) -> None:
    s = status("XNYS", T(at))
    assert (s.state, s.reason, s.early_close) == (state, reason, early)
    assert s.next_open == T(next_open + ":00+00:00")
    assert s.next_close == T(next_close + ":00+00:00")
    assert s.is_open == (state == "open")


def test_session_times_break_and_crypto() -> None:
    s = status("XNYS", T("2025-11-28T12:00:00-05:00"))
    assert s.session_open == T("2025-11-28T14:30:00Z") and s.session_close == T(
        "2025-11-28T18:00:00Z"
    )
    tokyo = status("XTKS", T("2025-12-01T03:00:00Z"))  # 12:00 JST: the lunch break
    assert (tokyo.state, tokyo.next_open) == ("break", T("2025-12-01T03:30:00Z"))
    assert tokyo.session_close == T("2025-12-01T06:30:00Z")  # 15:30 JST since November 2024
    crypto = status("ALWAYS", T("2025-12-25T03:00:00Z"))
    assert crypto.is_open and crypto.reason == "open"


def test_bad_exchange_and_instants_are_refused() -> None:
    with pytest.raises(UnknownExchangeError, match="unknown exchange 'NOPE'"):
        status("NOPE", T("2025-12-01T12:00:00Z"))
    with pytest.raises(ValueError, match="timezone-aware"):
        status("XNYS", datetime(2025, 12, 1, 12))
    with pytest.raises(ValueError, match="outside"):
        status("XNYS", T("1999-12-01T12:00:00Z"))


def test_api_market_status(tmp_path: Path) -> None:
    now = T("2025-11-28T16:00:00Z")
    settings = Settings.from_env({}, lake_dir=str(tmp_path / "lake"))
    client = Client(build_api(app=build_embedded(settings, clock=lambda: now)))
    r = client.get("/v1/market/status?exchange=XNYS")
    body = r.get_json()
    assert r.status_code == 200 and r.headers["Cache-Control"] == "private, max-age=30"
    assert (body["state"], body["early_close"], body["is_open"]) == ("open", True, True)
    assert body["session_close"] == "2025-11-28T18:00:00+00:00"
    assert body["next_open"] == "2025-12-01T14:30:00+00:00"
    assert client.get("/v1/market/status").get_json()["exchange"] == "XNYS"  # the default
    christmas = client.get("/v1/market/status?exchange=XNYS&date=2025-12-25").get_json()
    assert (christmas["state"], christmas["reason"], christmas["session"]) == (
        "closed",
        "holiday",
        None,
    )
    at = client.get("/v1/market/status?exchange=XNYS&at=2025-11-28T18:00:00Z").get_json()
    assert (at["state"], at["reason"], at["early_close"]) == ("closed", "after_close", True)
    for url, code, parameter in (
        ("/v1/market/status?exchange=NOPE", 404, None),
        ("/v1/market/status?exchange=xnys", 400, "exchange"),
        ("/v1/market/status?at=2025-11-28", 400, "at"),
        ("/v1/market/status?date=2025-02-30", 400, "date"),
        ("/v1/market/status?at=2025-11-28T18:00:00Z&date=2025-13-28", 400, "date"),
        ("/v1/market/status?at=1990-01-02T15:00:00Z", 404, None),
        ("/v1/market/status?venue=XNYS", 400, "venue"),
    ):
        r = client.get(url)
        assert r.status_code == code, url
        assert r.get_json()["error"].get("parameter") == parameter, url


def test_cli_market(tmp_path: Path) -> None:
    from barlake.cli import app

    runner = CliRunner()
    early = runner.invoke(app, ["market", "--date", "2025-11-28", "--json"])
    assert early.exit_code == 0, early.output
    assert json.loads(early.stdout)["early_close"] is True
    shown = runner.invoke(app, ["market", "--at", "2025-12-25T15:00:00Z"], env={"COLUMNS": "200"})
    assert (
        "closed (holiday)" in shown.stdout and "next open Fri 2025-12-26 09:30 EST" in shown.stdout
    )
    for args, code, message in (
        (["--exchange", "nope"], 2, "unknown exchange 'NOPE'"),
        (["--at", "noon"], 2, "--at must be a date-time"),
        (["--at", "2025-12-25T15:00:00"], 2, "--at needs an offset"),
        (["--date", "1990-01-02"], 4, "outside"),
    ):
        r = runner.invoke(app, ["market", *args])
        assert r.exit_code == code and message in r.stderr, (args, r.output)
