"""The event-bus contract, run against every adapter: the in-process bus, and Pub/Sub on its
emulator (each test its own topic and pull subscription; the emulator starts only when a
Pub/Sub-parametrised test runs).

What a subscriber receives is checked where a subscriber would see it: through a subscription
callback in process, by pulling from a real subscription on the emulator.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import pubsub_v1

from barlake.adapters.inprocess_bus import InProcessBus
from barlake.adapters.pubsub_bus import PubSubBus
from barlake.emulators import Emulator, free_port
from barlake.messages import IngestBatch, IngestRequest
from barlake.ports import EventBus, TransientError
from conftest import EMULATOR_PROJECT


@dataclass(frozen=True)
class Received:
    body: Any  # the decoded JSON the subscriber got
    data: bytes  # the bytes on the wire
    attributes: dict[str, str]
    message_id: str


class InProcessHarness:
    def __init__(self) -> None:
        self.bus = InProcessBus(topics=set())
        self._got: dict[str, list[tuple[Any, dict[str, str]]]] = {}

    def topic(self) -> str:
        name = f"t-{uuid.uuid4().hex[:12]}"
        assert self.bus.topics is not None
        self.bus.topics.add(name)
        self._got[name] = []
        self.bus.subscribe(name, lambda d, a: self._got[name].append((d, dict(a))))
        return name

    def accepted(self, topic: str) -> int:
        return self.bus.pending()

    def received(self, topic: str, n: int) -> list[Received]:
        self.bus.drain()
        sent = [e for e in self.bus.published if e.topic == topic]
        got = self._got[topic]
        assert len(got) == len(sent)
        return [
            Received(body, env.data, attrs, env.message_id)
            for (body, attrs), env in zip(got, sent, strict=True)
        ]

    def close(self) -> None:
        pass


@dataclass
class PubSubHarness:
    bus: PubSubBus
    admin: pubsub_v1.PublisherClient = field(default_factory=pubsub_v1.PublisherClient)
    subscriber: pubsub_v1.SubscriberClient = field(default_factory=pubsub_v1.SubscriberClient)
    subscriptions: dict[str, str] = field(default_factory=dict)

    def topic(self) -> str:
        name = f"t-{uuid.uuid4().hex[:12]}"
        path = self.admin.topic_path(EMULATOR_PROJECT, name)
        self.admin.create_topic(name=path)
        sub = self.subscriber.subscription_path(EMULATOR_PROJECT, f"{name}-sub")
        self.subscriber.create_subscription(name=sub, topic=path)
        self.subscriptions[name] = sub
        return name

    def received(self, topic: str, n: int, timeout: float = 30) -> list[Received]:
        """Pull and acknowledge until n distinct messages came (or the timeout)."""
        sub, out, seen = self.subscriptions[topic], [], set()
        deadline = time.monotonic() + timeout
        while len(seen) < n and time.monotonic() < deadline:
            resp = self.subscriber.pull(subscription=sub, max_messages=1000, timeout=10)
            if resp.received_messages:
                self.subscriber.acknowledge(
                    subscription=sub, ack_ids=[m.ack_id for m in resp.received_messages]
                )
            for m in resp.received_messages:
                msg = m.message
                if msg.message_id not in seen:  # at-least-once: a redelivery is no new message
                    seen.add(msg.message_id)
                    received = Received(
                        json.loads(msg.data), msg.data, dict(msg.attributes), msg.message_id
                    )
                    out.append(received)
        return out

    def close(self) -> None:
        self.bus.close()
        self.subscriber.close()


Harness = InProcessHarness | PubSubHarness


@pytest.fixture(params=["inprocess", "pubsub"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    h: Harness
    if request.param == "pubsub":
        request.getfixturevalue("emulator_env")(request.getfixturevalue("pubsub_emulator"))
        # Built as config.py builds it: no publisher given, the emulator found through the env.
        h = PubSubHarness(PubSubBus(EMULATOR_PROJECT))
    else:
        h = InProcessHarness()
    yield h
    h.close()


def wire(message: dict[str, Any]) -> bytes:
    """The agreed encoding, written out here rather than taken from the code under test."""
    return json.dumps(message, separators=(",", ":"), sort_keys=True).encode("utf-8")


def test_versioned_message_round_trips_with_routing_attributes(harness: Harness) -> None:
    topic = harness.topic()
    msg = IngestBatch("run", "run-b00000", ("AAPL", "^GSPC", "BRK-B"))
    bus: EventBus = harness.bus
    message_id = bus.publish(topic, msg.to_json(), {"run_id": "run"})
    [got] = harness.received(topic, 1)
    assert IngestBatch.from_json(got.body) == msg
    assert got.data == wire(msg.to_json())
    assert got.attributes == {"version": "1", "run_id": "run"}
    assert got.message_id == message_id


def test_kind_is_a_routing_attribute_and_unicode_survives(harness: Harness) -> None:
    topic = harness.topic()
    request = IngestRequest(kind="backfill", symbols=("7203.T", "EURUSD=X"), run_id="r-ü")
    harness.bus.publish(topic, request.to_json(), {"source": "cli"})
    [got] = harness.received(topic, 1)
    assert got.body == request.to_json() and got.data == wire(request.to_json())
    assert got.attributes == {"version": "1", "kind": "backfill", "source": "cli"}


def test_publish_returns_once_the_message_is_accepted(harness: Harness) -> None:
    topic = harness.topic()
    message_id = harness.bus.publish(topic, {"version": 1, "n": 1})
    assert isinstance(message_id, str) and message_id
    # Already on the topic when publish returned: the very next receive finds it.
    [got] = harness.received(topic, 1)
    assert got.message_id == message_id and got.body == {"version": 1, "n": 1}


def test_publish_many_loses_nothing(harness: Harness) -> None:
    topic = harness.topic()
    messages = [({"version": 1, "n": i}, {"i": str(i)}) for i in range(500)]
    ids = harness.bus.publish_many(topic, messages)
    assert len(ids) == 500 and len(set(ids)) == 500 and all(ids)
    got = harness.received(topic, 500)
    assert sorted(r.body["n"] for r in got) == list(range(500))
    by_id = {r.message_id: r for r in got}
    assert set(by_id) == set(ids)
    for i, message_id in enumerate(ids):  # ids come back in the order of the messages
        assert by_id[message_id].body == {"version": 1, "n": i}
        assert by_id[message_id].attributes == {"version": "1", "i": str(i)}


def test_publishing_to_a_missing_topic_is_a_clear_permanent_error(harness: Harness) -> None:
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(LookupError, match=missing) as caught:
        harness.bus.publish(missing, {"version": 1})
    assert not isinstance(caught.value, TransientError)
    with pytest.raises(LookupError, match=missing):
        harness.bus.publish_many(missing, [({"version": 1}, None), ({"version": 1}, None)])


# --------------------------------------------------------------------------- Pub/Sub only


def test_pubsub_unreachable_raises_transient_error_after_the_clients_retries(
    monkeypatch: pytest.MonkeyPatch, pubsub_emulator: Emulator
) -> None:
    """Nothing listens on the port: the client retries UNAVAILABLE until its deadline, then the
    bus raises TransientError (the caller's message will be redelivered)."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    bus = PubSubBus(EMULATOR_PROJECT, deadline=1.0)
    try:
        start = time.monotonic()
        with pytest.raises(TransientError, match="ingest-batches"):
            bus.publish("ingest-batches", {"version": 1})
        assert time.monotonic() - start >= 0.5  # retried for a while, not failed at once
        with pytest.raises(TransientError):
            bus.publish_many("ingest-batches", [({"version": 1}, None)] * 3)
    finally:
        bus.close()


def test_pubsub_topic_names() -> None:
    bus = PubSubBus("proj", pubsub_v1.PublisherClient(credentials=AnonymousCredentials()))
    assert bus.topic_path("ingest-batches") == "projects/proj/topics/ingest-batches"
    assert bus.topic_path("projects/other/topics/x") == "projects/other/topics/x"
    bus.close()
    with pytest.raises(ValueError, match="project"):
        PubSubBus("")
