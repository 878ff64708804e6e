"""Headless Debian Chromium under Playwright, for the dashboard's browser tests.

Playwright's own browser builds cannot be downloaded here, so the tests drive the system's
/usr/bin/chromium (`apt-get install chromium`; .ci/run installs it) through Playwright's
`executable_path`. Where Chromium, Playwright or the npm-installed chart library is missing the
tests skip with the reason; with BARLAKE_REQUIRE_EMULATORS=1 (CI) they fail instead.

Every page records its console errors, uncaught exceptions and failed or off-origin requests,
so a test can assert the page ran cleanly and fetched nothing from another host.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from barlake.api.dashboard import vendor_file

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = Path(os.environ.get("BARLAKE_SCREENSHOTS", ROOT / "dist" / "screenshots"))


def _unavailable(reason: str) -> None:
    if os.environ.get("BARLAKE_REQUIRE_EMULATORS") == "1":
        pytest.fail(f"BARLAKE_REQUIRE_EMULATORS=1 but {reason}")
    pytest.skip(reason)


def chromium_path() -> str | None:
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )


@dataclass
class Watched:
    """A page and what went wrong on it."""

    page: Any
    origin: str
    problems: list[str] = field(default_factory=list)

    def goto(self, path: str) -> None:
        self.page.goto(f"{self.origin}{path}")
        self.ready()

    def ready(self) -> None:
        """Wait until the dashboard has drawn the current route."""
        self.page.wait_for_selector("body[data-ready]", timeout=15_000)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        _unavailable("no chromium on PATH (apt-get install chromium)")
    if vendor_file() is None:
        _unavailable("the dashboard's chart library is not installed (npm ci)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (uv sync)")
    with sync_playwright() as pw:  # each launch gets a fresh, empty profile of its own
        launched = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def open_page(browser: Any, origin: str, **context: Any) -> Watched:
    """A fresh context (no shared key or cache) whose problems are recorded."""
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    watched = Watched(page, origin)

    def on_console(msg: Any) -> None:
        if msg.type == "error":
            watched.problems.append(f"console: {msg.text}")

    def on_request(request: Any) -> None:
        url = request.url
        if not (url.startswith(origin) or url.startswith("data:")):
            watched.problems.append(f"off-origin request: {url}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: watched.problems.append(f"page error: {exc}"))
    page.on("request", on_request)
    page.on("requestfailed", lambda r: watched.problems.append(f"failed: {r.url}"))
    return watched
