"""A lake for the API tests: the bundled real Yahoo recordings (shared/barlake/demo_data)
ingested stage by stage through the real embedded pipeline, and the API over it.

Stages: 1 = recorded 2021-11-22 (GOOG/AMZN before their 20:1 splits), 2 = 2025-08-15 (splits
restated, new days), 3 = 2025-08-25 (MSFT's new days and dividend restatement).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from werkzeug.test import Client, TestResponse

from barlake.adapters.replay_provider import ReplayProvider
from barlake.api.app import ApiApp, build_api
from barlake.config import App, Settings, build_embedded, run_embedded
from barlake.messages import IngestRequest
from barlake.ports import RunStatus

DEMO_DATA = Path(__file__).resolve().parents[1] / "shared" / "barlake" / "demo_data"
SYMBOLS = ("AAPL", "AMZN", "GOOG", "MSFT")
_runs = itertools.count()


@dataclass
class Lake:
    app: App
    provider: ReplayProvider
    api: ApiApp

    @property
    def client(self) -> Client:
        return Client(self.api)

    def get(self, url: str, **kw: object) -> TestResponse:
        return Client(self.api).get(url, **kw)  # type: ignore[arg-type]

    def ingest(self, *symbols: str) -> RunStatus:
        request = IngestRequest(
            kind="manual", run_id=f"api-test-{next(_runs)}", symbols=symbols or SYMBOLS
        )
        return run_embedded(self.app, request)

    def next_stage(self) -> RunStatus:
        """The next recording's run; an answer found suspect (MSFT's third recording starts
        later than the lake) is confirmed by the next run, as the daily schedule would."""
        assert self.provider.advance(), "no further recording"
        status = self.ingest()
        if any("suspect answer" in (o.error or "") for o in status.outcomes()):
            status = self.ingest()
        return status


def settings(lake_dir: Path, **env: str) -> Settings:
    return Settings.from_env({}, lake_dir=str(lake_dir), **env)


def open_lake(lake_dir: Path, stage: str | None = None, **env: str) -> Lake:
    """An app (and its API) over lake_dir; `stage` picks the recording its provider serves."""
    provider = ReplayProvider(DEMO_DATA)
    if stage is not None:
        provider.use(stage)
    app = build_embedded(settings(lake_dir, **env), provider=provider)
    return Lake(app, provider, build_api(app=app))


def stages() -> list[str]:
    return ReplayProvider(DEMO_DATA).recordings
