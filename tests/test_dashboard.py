"""The dashboard in a real browser: Debian's Chromium, headless, against `barlake serve` over the
demo lake. What an operator reads must be what the API says: the totals, the latest run, each
symbol's row, the candles the chart holds; the switches and the search must work; nothing may
log an error or fetch from another host; a phone-sized screen must not scroll sideways.
Screenshots land in dist/screenshots/ (BARLAKE_SCREENSHOTS) on every run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from barlake.demo import DEMO_SYMBOLS, run_demo
from barlake.emulators import free_port, stop_group
from browser import open_page

KEY = "dashboard-test-key"


def fetch(url: str, key: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def get_json(url: str, key: str | None = None) -> Any:
    status, _, body = fetch(url, key)
    assert status == 200, (url, status, body[:200])
    return json.loads(body)


class Served:
    def __init__(self, lake: Path, logs: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = (logs / f"serve-{self.port}.log").open("wb")
        argv = [sys.executable, "-m", "barlake.cli", "serve", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [*argv, "--lake", str(lake)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if fetch(f"{self.url}/v1/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError(f"barlake serve did not start: {logs}")

    def stop(self) -> None:
        stop_group(self.proc.pid, reap=self.proc.poll)
        self._log.close()


@pytest.fixture(scope="module")
def demo_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = tmp_path_factory.mktemp("demo") / "lake"
    run_demo(lake)
    return lake


@pytest.fixture(scope="module")
def served(
    demo_lake: Path,
    tmp_path_factory: pytest.TempPathFactory,
    browser: Any,
) -> Iterator[Served]:
    server = Served(demo_lake, tmp_path_factory.mktemp("logs"))
    yield server
    server.stop()


def _clean(watched: Any) -> None:
    assert watched.problems == []


def test_overview_shows_what_the_api_says(browser: Any, served: Served) -> None:
    w = open_page(browser, served.url, viewport={"width": 1280, "height": 900})
    w.goto("/dashboard")
    api = get_json(f"{served.url}/v1/symbols?limit=1000")
    run = get_json(f"{served.url}/v1/runs/latest")
    page = w.page
    totals = api["totals"]
    for tile, field in [
        ("symbols", "symbols"),
        ("rows", "rows"),
        ("bytes", "bytes"),
        ("stale", "stale"),
        ("gaps", "with_gaps"),
        ("quarantined", "quarantined"),
    ]:
        assert page.get_attribute(f"#tile-{tile} dd", "data-value") == str(totals[field]), tile
    assert page.inner_text("#tile-rows dd") == f"{totals['rows']:,}"
    assert page.get_attribute("#run", "data-run-id") == run["run_id"]
    assert page.inner_text("#run-state") == ("complete" if run["complete"] else "incomplete")
    assert page.inner_text("#run-batches").startswith(
        f"{run['batches_done']}/{run['batches_expected']} batches"
    )
    restated = run["counts"]["restated"]
    assert restated >= 1  # the demo heals restatements
    assert page.get_attribute("#tile-run-restated dd", "data-value") == str(restated)
    rows = page.locator("#symbols-table tbody tr")
    assert rows.count() == len(DEMO_SYMBOLS) == len(api["symbols"])
    for entry in api["symbols"]:
        cells = page.locator(f"#symbols-table tr[data-symbol='{entry['symbol']}'] td")
        assert cells.nth(3).inner_text() == entry["last_date"]
        assert cells.nth(4).get_attribute("data-value") == str(entry["rows"])
        assert cells.nth(5).get_attribute("data-value") == str(entry["staleness_sessions"])
    page.fill("#table-filter", "ms")
    assert page.locator("#symbols-table tbody tr:visible").count() == 1
    w.screenshot("dashboard-overview")
    _clean(w)


def _candles(page: Any) -> int:
    return int(page.get_attribute("#chart", "data-candles"))


def test_symbol_chart_switches_and_history(browser: Any, served: Served) -> None:
    w = open_page(browser, served.url, viewport={"width": 1280, "height": 900})
    w.goto("/dashboard#/symbol/MSFT")
    page = w.page
    page.wait_for_selector("#chart[data-candles]")
    daily = get_json(f"{served.url}/v1/bars/MSFT?format=json")
    # the latest recording's 125 bars + the 6 older ones its later start left in place
    # (a provider purge keeps the lake's older days: docs/data-quality.md)
    assert _candles(page) == daily["count"] == 131
    assert page.get_attribute("#chart", "data-generation") == str(daily["generation"])

    for interval in ("1wk", "1mo"):
        page.click(f"button[data-interval='{interval}']")
        page.wait_for_selector(f"#chart[data-interval='{interval}']")
        w.ready()
        bars = get_json(f"{served.url}/v1/bars/MSFT?format=json&interval={interval}")
        assert _candles(page) == bars["count"], interval
        pressed = page.get_attribute(f"button[data-interval='{interval}']", "aria-pressed")
        assert pressed == "true"
        assert page.get_attribute("button[data-interval='1d']", "aria-pressed") == "false"
    assert "interval=1mo" in page.url

    page.click("button[data-adjust='total']")
    page.wait_for_selector("#chart[data-adjust='total']")
    w.ready()
    total = get_json(f"{served.url}/v1/bars/MSFT?format=json&interval=1mo&adjust=total")
    last = total["bars"][-1]
    assert _candles(page) == total["count"]
    assert f"close {last['close']:,.2f}" in page.inner_text("#bars-summary")
    assert page.get_attribute("#chart", "data-interval") == "1mo"  # the other switch is kept

    history = get_json(f"{served.url}/v1/history/MSFT")
    assert history["restatement_count"] >= 1
    assert page.locator("#restatements tbody tr").count() == history["restatement_count"]
    assert "dividend" in page.inner_text("#restatements")
    profile = get_json(f"{served.url}/v1/profiles/MSFT")
    assert page.inner_text("#profile dd[data-field='rows']") == f"{profile['rows']:,}"
    assert page.inner_text("#profile dd[data-field='last bar']") == profile["last_date"]
    page.wait_for_timeout(200)  # the chart paints on the next animation frame
    w.screenshot("dashboard-symbol")
    _clean(w)


def test_symbol_search_opens_a_symbol_and_reports_an_unknown_one(
    browser: Any,
    served: Served,
) -> None:
    w = open_page(browser, served.url)
    w.goto("/dashboard")
    page = w.page
    assert page.locator("#symbol-list option").count() == len(DEMO_SYMBOLS)
    page.fill("#search-input", "aapl")
    page.press("#search-input", "Enter")
    page.wait_for_selector("#symbol-page[data-symbol='AAPL'] #chart[data-candles]")
    assert _candles(page) == get_json(f"{served.url}/v1/bars/AAPL?format=json")["count"]
    assert page.inner_text("#symbol-h") == "AAPL"
    page.fill("#search-input", "ZZZZ")
    page.press("#search-input", "Enter")
    page.wait_for_selector("#error:not([hidden])")
    assert "no bars for ZZZZ" in page.inner_text("#error")
    # the 404 of the unknown symbol is the one expected failure
    assert [p for p in w.problems if "404" not in p] == []


def test_readable_on_a_phone(browser: Any, served: Served) -> None:
    w = open_page(browser, served.url, viewport={"width": 375, "height": 740}, is_mobile=True)
    for route in ("/dashboard", "/dashboard#/symbol/MSFT?interval=1wk"):
        w.goto(route)
        overflow = w.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, route
        w.page.wait_for_timeout(100)
    w.screenshot("dashboard-phone")
    _clean(w)


def test_with_api_keys_the_page_asks_for_one_and_its_calls_carry_it(
    browser: Any,
    demo_lake: Path,
    tmp_path: Path,
) -> None:
    server = Served(demo_lake, tmp_path, {"BARLAKE_API_KEYS": KEY})
    try:
        assert fetch(f"{server.url}/v1/symbols")[0] == 401
        status, headers, _ = fetch(f"{server.url}/dashboard")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        w = open_page(browser, server.url)
        w.goto("/dashboard")
        page = w.page
        page.wait_for_selector("#key-form:not([hidden])")
        assert page.locator("#totals").count() == 0
        page.fill("#key-input", KEY)
        page.press("#key-input", "Enter")
        page.wait_for_selector("#totals")
        totals = get_json(f"{server.url}/v1/symbols", KEY)["totals"]
        assert page.get_attribute("#tile-rows dd", "data-value") == str(totals["rows"])
        assert [p for p in w.problems if "401" not in p] == []
    finally:
        server.stop()


# --------------------------------------------------------------------------- without a browser

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from apilake import open_lake

    opened = open_lake(tmp_path_factory.mktemp("api") / "lake")
    opened.ingest()
    opened.next_stage()
    return opened


def test_pages_are_served_with_a_strict_policy_and_revalidate(lake: Any) -> None:
    for path, media in [
        ("/dashboard", "text/html"),
        ("/dashboard/", "text/html"),
        ("/dashboard/dashboard.js", "text/javascript"),
        ("/dashboard/dashboard.css", "text/css"),
        ("/dashboard/vendor/lightweight-charts.js", "text/javascript"),
        ("/dashboard/vendor/LICENSE", "text/plain"),
    ]:
        r = lake.get(path)
        assert r.status_code == 200, path
        assert r.headers["Content-Type"].startswith(media), path
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]
        again = lake.get(path, headers={"If-None-Match": r.headers["ETag"]})
        assert again.status_code == 304 and again.data == b""
    html = lake.get("/dashboard").data.decode()
    assert "http://" not in html and "https://" not in html  # nothing from another host
    assert lake.get("/").json["dashboard"] == "/dashboard"


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/nope.js",
        "/dashboard/../app.py",
        "/dashboard/%2e%2e/app.py",
        "/dashboard/vendor/../../dashboard.py",
        "/dashboard/vendor/nope.js",
        "/dashboard/.hidden",
    ],
)
def test_anything_else_under_dashboard_is_a_json_404(lake: Any, path: str) -> None:
    r = lake.get(path)
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"


def test_pages_are_open_but_history_needs_the_key(tmp_path: Path) -> None:
    from apilake import open_lake

    keyed = open_lake(tmp_path / "lake", api_keys=KEY)
    keyed.ingest()
    assert keyed.get("/dashboard").status_code == 200
    assert keyed.get("/dashboard/dashboard.js").status_code == 200
    assert keyed.get("/v1/history/MSFT").status_code == 401
    r = keyed.get("/v1/history/MSFT", headers={"X-API-Key": KEY})
    assert r.status_code == 200 and r.json["symbol"] == "MSFT"
    assert keyed.client.post("/dashboard").status_code == 405


def test_history_lists_restatements_newest_first_and_validates_input(lake: Any) -> None:
    history = lake.get("/v1/history/msft").json
    stored = lake.app.state.restatements("MSFT")
    assert history["restatement_count"] == len(stored) >= 1
    detected = [r["detected_at"] for r in history["restatements"]]
    assert detected == sorted(detected, reverse=True)
    assert history["restatements"][0]["run_id"] == max(stored, key=lambda r: r.detected_at).run_id
    assert history["quarantine"] == [] and history["quarantine_count"] == 0
    assert lake.get("/v1/history/NOPE").json["restatement_count"] == 0
    assert lake.get("/v1/history/a..b").status_code == 400
    assert lake.get("/v1/history/MSFT?x=1").status_code == 400
    etag = lake.get("/v1/history/MSFT").headers["ETag"]
    assert lake.get("/v1/history/MSFT", headers={"If-None-Match": etag}).status_code == 304


def test_the_dashboard_keeps_pandas_out_of_the_api_function(lake: Any) -> None:
    """The api's cold path stays light: the pages and the history load neither pandas nor
    yfinance (the api's cold import goal is 0.5 s)."""
    probe = """
import json, sys
import main
from barlake.api.function import get_api
def get(path):
    return get_api().handle({"REQUEST_METHOD": "GET", "PATH_INFO": path}).status
got = [get(p) for p in ("/dashboard", "/dashboard/vendor/lightweight-charts.js",
                        "/v1/history/MSFT", "/v1/symbols")]
print(json.dumps([got, sorted({"pandas", "yfinance"} & set(sys.modules))]))
"""
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=FUNCTIONS / "api",
        env={**os.environ, "BARLAKE_LAKE_DIR": str(lake.app.settings.lake_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [[200, 200, 200, 200], []]
