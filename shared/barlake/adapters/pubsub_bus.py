"""Event bus on Google Cloud Pub/Sub (or its emulator, found through PUBSUB_EMULATOR_HOST).

Why it is written the way it is:

- Short topic names ("ingest-batches") are the names Terraform and the local stack create, in
  this bus's project: `projects/{project}/topics/{name}`.
- Bodies and attributes come from bus_wire, byte for byte what the in-process bus produces.
- `publish` waits for the server's message id: a caller never "succeeds" with its message
  still in a client buffer. `publish_many` puts every message in flight first (the client
  batches them: 100 messages or 10 ms per request) and then waits for all of them, which is
  what makes dispatching 200 batches one round trip's wait instead of 200.
- The client retries what Pub/Sub calls retryable (UNAVAILABLE, DEADLINE_EXCEEDED, …) within
  `deadline`; whatever still fails then is a `TransientError` (services let it propagate so
  their own message is redelivered). A missing topic is not transient: it is a deployment
  mistake, raised as `TopicNotFound` (a LookupError) naming the topic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent import futures as cf
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.api_core import retry as api_retry
from google.cloud import pubsub_v1

from barlake.adapters.bus_wire import encode, routing_attributes
from barlake.ports import TransientError

BATCH = pubsub_v1.types.BatchSettings(max_messages=100, max_latency=0.01)
_RETRYABLE = (
    api_exceptions.Aborted,
    api_exceptions.Cancelled,
    api_exceptions.DeadlineExceeded,
    api_exceptions.InternalServerError,
    api_exceptions.ResourceExhausted,
    api_exceptions.ServiceUnavailable,
    api_exceptions.Unknown,
)


class TopicNotFound(LookupError):
    """Publishing to a topic that does not exist: permanent until someone creates it."""


def default_publisher(deadline: float = 60.0) -> pubsub_v1.PublisherClient:
    """A batching publisher whose retries give up after `deadline` seconds (the library's own
    default is ten minutes, longer than a function's whole budget)."""
    retry = api_retry.Retry(
        initial=0.1,
        maximum=min(10.0, deadline),
        multiplier=2,
        predicate=api_retry.if_exception_type(*_RETRYABLE),
        timeout=deadline,
    )
    options = pubsub_v1.types.PublisherOptions(retry=retry, timeout=min(30.0, deadline))
    return pubsub_v1.PublisherClient(batch_settings=BATCH, publisher_options=options)


class PubSubBus:
    """Publishes versioned JSON messages to the topics of one project."""

    def __init__(
        self,
        project: str,
        publisher: pubsub_v1.PublisherClient | None = None,
        *,
        deadline: float = 60.0,
    ) -> None:
        if not project:
            raise ValueError("PubSubBus needs a project (BARLAKE_PROJECT)")
        self.project = project
        self.deadline = deadline
        self.publisher = publisher if publisher is not None else default_publisher(deadline)

    def topic_path(self, topic: str) -> str:
        if topic.startswith("projects/"):
            return topic
        return f"projects/{self.project}/topics/{topic}"

    def _submit(
        self, path: str, message: Mapping[str, Any], attributes: Mapping[str, str] | None
    ) -> cf.Future[str]:
        future: cf.Future[str] = self.publisher.publish(
            path, encode(message), **routing_attributes(message, attributes)
        )
        return future

    def _wait(self, path: str, future: cf.Future[str]) -> str:
        try:
            # The client's retries end within `deadline`; the extra minute only guards
            # against a future that is never resolved.
            return future.result(timeout=self.deadline + 60)
        except api_exceptions.NotFound as exc:
            raise TopicNotFound(f"Pub/Sub topic {path} does not exist") from exc
        except (api_exceptions.InvalidArgument, api_exceptions.PermissionDenied):
            raise  # a bad message or missing rights: retrying would not help
        except (api_exceptions.GoogleAPIError, cf.TimeoutError) as exc:
            raise TransientError(f"publishing to {path} failed: {exc}") from exc

    def publish(
        self, topic: str, message: Mapping[str, Any], attributes: Mapping[str, str] | None = None
    ) -> str:
        path = self.topic_path(topic)
        return self._wait(path, self._submit(path, message, attributes))

    def publish_many(
        self,
        topic: str,
        messages: Sequence[tuple[Mapping[str, Any], Mapping[str, str] | None]],
    ) -> list[str]:
        """Submit every (message, attributes), then wait for all: the ids, in order. If any
        failed, every other one has still been waited for, and the first failure is raised."""
        path = self.topic_path(topic)
        pending = [self._submit(path, message, attributes) for message, attributes in messages]
        ids: list[str] = []
        errors: list[Exception] = []
        for future in pending:
            try:
                ids.append(self._wait(path, future))
            except Exception as exc:
                errors.append(exc)
        if errors:
            errors[0].add_note(f"{len(errors)} of {len(pending)} messages to {path} failed")
            raise errors[0]
        return ids

    def close(self) -> None:
        """Send what is buffered and stop the publisher's background threads."""
        self.publisher.stop()
