"""Tiingo adapter through its real HTTP client against a local server answering recorded bodies.

Recordings: hydrosquall/tiingo-python cassettes (tests/fixtures/providers/SOURCES.md). Error
bodies are synthesized in the shapes Tiingo documents (none is recorded under a permissive
licence); so is the split/dividend window (a recording with one split and one dividend added).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from barlake.adapters.provider_http import FREE_LIMITS, LocalPacer
from barlake.adapters.tiingo_provider import TiingoProvider
from barlake.core.codec import decode_daily, decode_provenance
from barlake.ports import ErrorKind
from provider_server import FIXTURES, Answer, file_answer, html_answer, json_answer, serve

TOKEN = "0" * 40
CLOCK = datetime(2018, 4, 13, 3, 0, tzinfo=UTC)
PATH = "/tiingo/daily/GOOGL/prices"
OVER = "Error: You have run over your hourly request allocation."


class NoPacing:
    def acquire(self, provider: str, cost: int = 1) -> float:
        return 0.0


def recorded(name: str) -> list[dict]:
    return json.loads((FIXTURES / "tiingo" / name).read_text())


def provider(url: str, **kw) -> TiingoProvider:
    return TiingoProvider(TOKEN, url, pacer=NoPacing(), clock=lambda: CLOCK, **kw)


def test_recording_maps_value_by_value_through_http() -> None:
    rows = recorded("GOOGL_2018-01-05_2018-01-19.json")
    with serve() as server:
        server.route(PATH, file_answer("tiingo/GOOGL_2018-01-05_2018-01-19.json"))
        result = provider(server.url).fetch(["GOOGL"], date(2018, 1, 5), date(2018, 1, 19))
    got = result["GOOGL"]
    assert got.error is None
    bars = got.bars.to_pylist()
    assert len(bars) == len(rows) == 10
    for bar, row in zip(bars, rows, strict=True):
        assert bar["symbol"] == "GOOGL"
        assert bar["date"] == date.fromisoformat(row["date"][:10])
        assert (bar["open"], bar["high"], bar["low"], bar["close"]) == (
            row["open"],
            row["high"],
            row["low"],
            row["close"],
        )
        assert bar["adj_close"] == row["adjClose"]
        assert bar["volume"] == row["volume"]
    assert date(2018, 1, 15) not in {b["date"] for b in bars}  # MLK day, absent upstream
    assert got.actions.num_rows == 0
    # The request: token header, a startDate, and no endDate (later splits must be seen).
    seen = server.seen[0]
    assert seen.headers["Authorization"] == f"Token {TOKEN}"
    assert seen.query["startDate"] == "2018-01-05" and "endDate" not in seen.query
    assert seen.query["resampleFreq"] == "daily"


def test_both_date_forms_and_full_history_start() -> None:
    with serve() as server:
        server.route(PATH, file_answer("tiingo/GOOGL_latest_2018-04-12.json"))
        got = provider(server.url).fetch(["GOOGL"], None, None)["GOOGL"]
    row = recorded("GOOGL_latest_2018-04-12.json")[0]
    assert row["date"].endswith("+00:00")
    assert got.bars.to_pylist()[0]["date"] == date(2018, 4, 12)
    assert got.bars.to_pylist()[0]["close"] == row["close"]
    # No start means the whole history: without a startDate Tiingo gives the latest row only.
    assert server.seen[0].query["startDate"] == "1900-01-01"


def test_rows_after_end_are_dropped_but_their_splits_still_count() -> None:
    """Synthesized: the 2015 recording plus a 2:1 split and a dividend on 2015-01-05."""
    rows = recorded("GOOGL_2015-01-01_2015-01-05.json")
    rows[1] = {**rows[1], "splitFactor": 2.0, "divCash": 0.5}
    with serve() as server:
        server.route(PATH, json_answer(rows))
        got = provider(server.url).fetch(["GOOGL"], date(2015, 1, 1), date(2015, 1, 2))["GOOGL"]
        full = provider(server.url).fetch(["GOOGL"], date(2015, 1, 1), None)["GOOGL"]
    (bar,) = got.bars.to_pylist()
    assert bar["date"] == date(2015, 1, 2)
    assert bar["close"] == rows[0]["close"] / 2 and bar["open"] == rows[0]["open"] / 2
    assert bar["volume"] == rows[0]["volume"] * 2
    assert bar["adj_close"] == rows[0]["adjClose"]  # Tiingo's own, untouched
    assert got.actions.num_rows == 0  # the split is after `end`
    after = full.bars.to_pylist()[1]
    assert after["close"] == rows[1]["close"] and after["volume"] == rows[1]["volume"]
    assert full.actions.to_pylist() == [
        {"symbol": "GOOGL", "date": date(2015, 1, 5), "kind": "dividend", "value": 0.5},
        {"symbol": "GOOGL", "date": date(2015, 1, 5), "kind": "split", "value": 2.0},
    ]


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (json_answer({"detail": "Error: Ticker 'GOOGL' not found"}, 404), ErrorKind.NOT_FOUND),
        (json_answer({"detail": "Invalid token."}, 401), ErrorKind.AUTH),
        (json_answer({"detail": "Please supply a token"}, 400), ErrorKind.AUTH),
        (json_answer({"detail": OVER}, 429), ErrorKind.RATE_LIMITED),
        (json_answer({"detail": OVER}), ErrorKind.RATE_LIMITED),
        (html_answer(200), ErrorKind.TRANSIENT),
        (html_answer(503), ErrorKind.TRANSIENT),
        (Answer(200, b"date,close\n2018-01-05,1.0\n", "text/csv"), ErrorKind.TRANSIENT),
        (json_answer({"unexpected": True}), ErrorKind.TRANSIENT),
        (json_answer([]), ErrorKind.NO_DATA),
    ],
)
def test_errors_are_classified_and_never_bars(answer: Answer, kind: ErrorKind) -> None:
    with serve() as server:
        server.route(PATH, answer)
        got = provider(server.url).fetch(["GOOGL"], date(2018, 1, 5), None)["GOOGL"]
    assert got.bars is None
    assert got.error is not None and got.error.kind is kind, got.error
    assert TOKEN not in got.error.message


def test_timeout_and_no_route() -> None:
    with serve() as server:
        server.route(PATH, Answer(200, b"[]", delay=1.0))
        slow = provider(server.url, timeout=(1.0, 0.2)).fetch(["GOOGL"], None, None)["GOOGL"]
        dead_url = server.url
    assert slow.error is not None and slow.error.kind is ErrorKind.TRANSIENT
    gone = provider(dead_url).fetch(["GOOGL"], None, None)["GOOGL"]  # nothing listens now
    assert gone.error is not None and gone.error.kind is ErrorKind.UNREACHABLE


def test_symbols_tiingo_cannot_serve_cost_no_request() -> None:
    with serve() as server:
        latest = file_answer("tiingo/GOOGL_latest_2018-04-12.json")
        server.route("/tiingo/daily/BRK-B/prices", latest)
        got = provider(server.url).fetch(["^GSPC", "7203.T", "EURUSD=X", "BRK-B"], None, None)
    assert server.paths() == ["/tiingo/daily/BRK-B/prices"]
    for symbol in ("^GSPC", "7203.T", "EURUSD=X"):
        assert got[symbol].error is not None and got[symbol].error.kind is ErrorKind.NOT_FOUND
        assert "cannot serve" in got[symbol].error.message
    assert got["BRK-B"].bars is not None and got["BRK-B"].bars["symbol"][0].as_py() == "BRK-B"


def test_missing_token_is_auth_without_a_request() -> None:
    with serve() as server:
        got = TiingoProvider("", server.url, pacer=NoPacing()).fetch(["GOOGL"], None, None)
    assert got["GOOGL"].error.kind is ErrorKind.AUTH and not server.seen


def test_pacer_budget_spent_means_rate_limited_and_no_request() -> None:
    now = [0.0]
    pacer = LocalPacer({"tiingo": FREE_LIMITS["tiingo"]}, patience=5, clock=lambda: now[0])
    with serve() as server:
        server.route(PATH, file_answer("tiingo/GOOGL_latest_2018-04-12.json"))
        tiingo = TiingoProvider(TOKEN, server.url, pacer=pacer, clock=lambda: CLOCK)
        for _ in range(FREE_LIMITS["tiingo"].burst):
            assert tiingo.fetch(["GOOGL"], None, None)["GOOGL"].error is None
        spent = tiingo.fetch(["GOOGL"], None, None)["GOOGL"]
        assert spent.error is not None and spent.error.kind is ErrorKind.RATE_LIMITED
        assert len(server.seen) == FREE_LIMITS["tiingo"].burst
        now[0] += 3600 / FREE_LIMITS["tiingo"].burst  # one token back
        assert tiingo.fetch(["GOOGL"], None, None)["GOOGL"].error is None


def _cli(lake: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "BARLAKE_TIINGO_URL": url,
        "BARLAKE_TIINGO_TOKEN": TOKEN,
        "BARLAKE_LAKE_DIR": str(lake),
    }
    return subprocess.run(
        [sys.executable, "-m", "barlake.cli", "run", *args, "--source", "tiingo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_run_source_tiingo_stores_the_recording(tmp_path: Path) -> None:
    """Done-when: `barlake run … --source tiingo` against the local server stores the recording."""
    rows = recorded("GOOGL_2018-01-05_2018-01-19.json")
    with serve() as server:
        server.route(PATH, file_answer("tiingo/GOOGL_2018-01-05_2018-01-19.json"))
        proc = _cli(tmp_path, server.url, "GOOGL", "--start", "2018-01-05")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stored = tmp_path / "barlake-raw" / "daily" / "GOOGL.parquet"
    bars, actions = decode_daily(stored.read_bytes())
    assert [
        (b["date"], b["open"], b["high"], b["low"], b["close"], b["adj_close"], b["volume"])
        for b in bars.to_pylist()
    ] == [
        (
            date.fromisoformat(r["date"][:10]),
            r["open"],
            r["high"],
            r["low"],
            r["close"],
            r["adjClose"],
            r["volume"],
        )
        for r in rows
    ]
    assert actions.num_rows == 0
    assert set(decode_provenance(stored.read_bytes()).column("source").to_pylist()) == {"tiingo"}
    shown = subprocess.run(
        [sys.executable, "-m", "barlake.cli", "show", "GOOGL", "--provenance"],
        env={**os.environ, "BARLAKE_LAKE_DIR": str(tmp_path), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "2018-01-05" in shown.stdout and "2018-01-19" in shown.stdout
    assert "tiingo" in shown.stdout and "10" in shown.stdout


def test_cli_run_error_body_stores_nothing(tmp_path: Path) -> None:
    with serve() as server:
        server.route(PATH, html_answer(200))
        proc = _cli(tmp_path, server.url, "GOOGL", "--start", "2018-01-05")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert not (tmp_path / "barlake-raw" / "daily" / "GOOGL.parquet").exists()
