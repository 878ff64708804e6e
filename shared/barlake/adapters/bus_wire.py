"""What a message looks like on a topic, shared by every event-bus adapter.

One encoding (compact JSON, sorted keys, UTF-8) and one set of routing attributes, so a
subscriber sees the same bytes and the same attributes whichever bus carried the message, and a
Pub/Sub subscription filter (`attributes.version = "1"`) can route without decoding the body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

ROUTING_FIELDS = ("version", "kind", "type")


def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), sort_keys=True).encode()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def routing_attributes(
    message: Mapping[str, Any], attributes: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The message's version, kind and type (those present) as string attributes, plus the
    caller's attributes, which win on a clash (they were asked for explicitly)."""
    routed = {k: _text(message[k]) for k in ROUTING_FIELDS if message.get(k) is not None}
    routed.update({str(k): str(v) for k, v in (attributes or {}).items()})
    return routed
