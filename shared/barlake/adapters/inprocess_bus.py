"""In-process event bus: Pub/Sub's contract on one machine.

Messages go through JSON on publish, exactly as they would on the wire (the same bytes and
routing attributes as Pub/Sub: see bus_wire), so a handler never sees an object that Pub/Sub
could not carry. Given `topics`, publishing to any other topic fails as it does on Pub/Sub;
without it every topic exists. Each subscription gets its own delivery of every
message on its topic (as with one Pub/Sub subscription per function). Delivery is queued —
publish never calls a handler re-entrantly — and `drain()` delivers until the queue is empty,
in order. A handler that raises is retried up to `max_attempts` times, then the message goes to
the dead-letter topic with the error, as a subscription with a dead-letter policy would do.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from barlake.adapters.bus_wire import encode, routing_attributes
from barlake.ports import Handler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Envelope:
    topic: str
    message_id: str
    data: bytes
    attributes: Mapping[str, str]

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass(frozen=True)
class _Subscription:
    name: str
    topic: str
    handler: Handler


@dataclass
class InProcessBus:
    dead_letter_topic: str = "dead-letter"
    max_attempts: int = 5
    topics: set[str] | None = None  # the topics that exist; None = every topic
    _subscriptions: list[_Subscription] = field(default_factory=list)
    _queue: deque[tuple[_Subscription, Envelope, int]] = field(default_factory=deque)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    published: list[Envelope] = field(default_factory=list)

    def subscribe(self, topic: str, handler: Handler, name: str | None = None) -> None:
        self._subscriptions.append(
            _Subscription(name or f"{topic}-{len(self._subscriptions)}", topic, handler)
        )

    def publish(
        self, topic: str, message: Mapping[str, Any], attributes: Mapping[str, str] | None = None
    ) -> str:
        if self.topics is not None and topic not in self.topics:
            raise LookupError(f"topic {topic!r} does not exist")
        env = Envelope(
            topic, str(next(self._ids)), encode(message), routing_attributes(message, attributes)
        )
        self.published.append(env)
        for sub in self._subscriptions:
            if sub.topic == topic:
                self._queue.append((sub, env, 1))
        return env.message_id

    def publish_many(
        self,
        topic: str,
        messages: Sequence[tuple[Mapping[str, Any], Mapping[str, str] | None]],
    ) -> list[str]:
        """Publish each (message, attributes) in order; the ids in the same order."""
        return [self.publish(topic, message, attributes) for message, attributes in messages]

    def pending(self) -> int:
        return len(self._queue)

    def drain(self) -> int:
        """Deliver queued messages (and those they cause) until none is left."""
        delivered = 0
        while self._queue:
            sub, env, attempt = self._queue.popleft()
            delivered += 1
            try:
                sub.handler(json.loads(env.data), env.attributes)
            except Exception as exc:
                if attempt < self.max_attempts:
                    log.warning("%s: retrying message %s: %s", sub.name, env.message_id, exc)
                    self._queue.append((sub, env, attempt + 1))
                else:
                    log.error("%s: dead-lettering message %s: %s", sub.name, env.message_id, exc)
                    self.publish(
                        self.dead_letter_topic,
                        {"subscription": sub.name, "data": env.data.decode(), "error": str(exc)},
                        {"attempts": str(attempt)},
                    )
        return delivered
