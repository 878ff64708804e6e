"""Versioned messages: JSON round trips, GCS's object resource, and refusals that never retry."""

from __future__ import annotations

import json
from datetime import date

import pytest

from barlake.messages import BadMessage, IngestBatch, IngestRequest, ObjectFinalized


def wire(message: dict) -> dict:
    return json.loads(json.dumps(message))


def test_request_and_batch_round_trip_through_json() -> None:
    req = IngestRequest(
        "backfill", "bf-1", ("BRK-B", "^GSPC"), "sp500", date(2005, 1, 3), date(2024, 12, 31), True
    )
    assert IngestRequest.from_json(wire(req.to_json())) == req
    assert req.to_json()["start"] == "2005-01-03" and req.to_json()["version"] == 1
    batch = IngestBatch("bf-1", "bf-1-b00000", ("EURUSD=X",), date(2020, 1, 1))
    assert IngestBatch.from_json(wire(batch.to_json())) == batch


def test_symbols_are_normalised_and_deduplicated() -> None:
    req = IngestRequest.from_json(
        {"version": 1, "kind": "manual", "run_id": "m1", "symbols": ["aapl", " AAPL ", "msft"]}
    )
    assert req.symbols == ("AAPL", "MSFT")


def test_gcs_object_resource_is_accepted() -> None:
    # As Eventarc delivers it: generation is a string, plus many fields we ignore.
    resource = {
        "kind": "storage#object",
        "bucket": "raw",
        "name": "daily/AAPL.parquet",
        "generation": "1732200000123456",
        "metageneration": "1",
        "size": "51234",
        "metadata": {"rows": "5040"},
    }
    event = ObjectFinalized.from_json(resource)
    assert (event.bucket, event.name, event.generation) == (
        "raw",
        "daily/AAPL.parquet",
        1732200000123456,
    )
    assert ObjectFinalized.from_json(wire(event.to_json())) == event


@pytest.mark.parametrize(
    ("cls", "data", "message"),
    [
        (IngestRequest, {"version": 2}, "unsupported message version 2"),
        (IngestRequest, {"kind": "manual"}, "unsupported message version None"),
        (IngestRequest, {"version": 1, "kind": "weekly"}, "unknown request kind"),
        (
            IngestRequest,
            {"version": 1, "kind": "backfill", "symbols": ["A"]},
            "a backfill request needs a run_id",
        ),
        (IngestRequest, {"version": 1, "run_id": ["x"]}, "run_id must be a non-empty string"),
        (IngestRequest, {"version": 1, "universe": ["u"]}, "universe must be a non-empty string"),
        (IngestRequest, {"version": 1, "full": "false"}, "full must be true or false"),
        (IngestRequest, ["not", "an", "object"], "a message must be a JSON object"),
        (IngestBatch, "AAPL", "a message must be a JSON object"),
        (ObjectFinalized, 42, "an object event must be a JSON object"),
        (IngestRequest, {"version": 1, "start": "2024-02-30"}, "start: not an ISO date"),
        (IngestRequest, {"version": 1, "start": "2024-02-01", "end": "2024-01-01"}, "is after end"),
        (IngestRequest, {"version": 1, "symbols": "AAPL"}, "symbols must be a list"),
        (IngestRequest, {"version": 1, "symbols": ["../x"]}, "invalid symbol"),
        (IngestBatch, {"version": 1, "batch_id": "b"}, "missing field 'run_id'"),
        (ObjectFinalized, {"bucket": "raw", "name": "x"}, "not an object event"),
        (
            ObjectFinalized,
            {"bucket": "raw", "name": "x", "generation": "abc"},
            "not an object event",
        ),
    ],
)
def test_bad_messages_are_refused_permanently(cls: type, data: dict, message: str) -> None:
    with pytest.raises(BadMessage, match=message):
        cls.from_json(data)
