"""Freshness across processes with different cache settings, against a real redis-server.

The reader is the API on a shared cache (Redis, or Upstash through its REST bridge); the
writer is another app instance over the same local lake on *another* setting — the default
memory cache, none, or the same shared cache. Whatever the writer's setting, the reader's next
answer after the write is the new one (README "The cache, and when a read can be stale").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from werkzeug.test import Client

from apilake import open_lake, stages
from test_api_cache import cache_settings

READERS = ["redis", "upstash"]
WRITERS = ["memory", "none", "redis"]


@pytest.mark.parametrize("writer_cache", WRITERS)
@pytest.mark.parametrize("reader_cache", READERS)
def test_a_write_on_any_cache_setting_is_read_fresh(
    tmp_path: Path, reader_cache: str, writer_cache: str, request: pytest.FixtureRequest
) -> None:
    lake_dir = tmp_path / "lake"
    writer = open_lake(lake_dir, stage=stages()[1], **cache_settings(writer_cache, request))
    writer.ingest("MSFT")
    reader = open_lake(lake_dir, **cache_settings(reader_cache, request))
    client = Client(reader.api)
    views = ["/v1/bars/MSFT?limit=1", "/v1/bars/MSFT?interval=1wk&limit=1"]
    for url in views * 2:  # the second round comes from the cache
        assert client.get(url).status_code == 200
    assert reader.api.served["hit"] + reader.api.served["hit-l1"] >= 2
    old = json.loads(client.get(views[0]).get_data())["bars"][0]["date"]

    writer.provider.use(stages()[2])
    # MSFT's third recording starts later than the lake: suspect on first sight, applied by the
    # next run (docs/data-quality.md, "History never shrinks").
    writer.ingest("MSFT")
    writer.ingest("MSFT")

    got = json.loads(client.get(views[0]).get_data())["bars"][0]["date"]
    assert (old, got) == ("2025-08-15", "2025-08-25")
    weekly = json.loads(client.get(views[1]).get_data())["bars"][0]["date"]
    assert weekly == "2025-08-25"
