"""`barlake deadletter list|replay [--run ID]`: the dead-letter queue without gcloud and jq.

Pub/Sub moves a message that failed `max_delivery_attempts` times to topic `dead-letter`, where
the pull subscription `dead-letter-inspect` keeps it 7 days with the attribute
`CloudPubSubDeadLetterSourceSubscription` naming the subscription it came from: `dispatch` (a
run request: replayed to ingest-requests) or `ingest` (a batch: replayed to ingest-batches).
`list` pulls and releases at once (nothing is lost by looking); `replay` republishes each one
to its topic, then acknowledges it. Every handler is idempotent, so a replay is always safe.

The embedded lake has no queue to keep: its in-process bus dead-letters within one command.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

INSPECT_SUBSCRIPTION = "dead-letter-inspect"  # infra/pubsub.tf and barlake.stack
SOURCE_ATTRIBUTE = "CloudPubSubDeadLetterSourceSubscription"

deadletter_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Dead-lettered messages (Pub/Sub: the stack or Google Cloud): list or replay them.",
)
out = Console()
err = Console(stderr=True)
RunOption = Annotated[str | None, typer.Option("--run", help="Only this run's messages.")]


@dataclass(frozen=True)
class DeadLetter:
    ack_id: str
    message_id: str
    source: str  # the subscription it was dead-lettered from
    payload: dict[str, Any]
    attributes: dict[str, str]

    @property
    def run_id(self) -> str | None:
        value = self.payload.get("run_id")
        return str(value) if value is not None else None


def _fail(message: str, code: int = 2) -> None:
    err.print(f"barlake: error: {' '.join(message.split())}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _settings() -> Any:
    from barlake.config import ConfigError, Settings

    try:
        s = Settings.from_env()
    except ConfigError as exc:
        _fail(str(exc))
    if s.events != "pubsub":
        _fail(
            "dead letters live in Pub/Sub (subscription dead-letter-inspect); the embedded lake "
            "keeps none: set the stack's or the project's settings (barlake stack env)"
        )
    return s


def _targets(s: Any) -> dict[str, str]:
    return {"dispatch": s.ingest_requests_topic, "ingest": s.ingest_batches_topic}


def pull(project: str, limit: int = 1000) -> tuple[Any, str, list[DeadLetter]]:
    """Every dead letter waiting (up to limit), not yet acknowledged."""
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(project, INSPECT_SUBSCRIPTION)
    found: dict[str, DeadLetter] = {}
    while len(found) < limit:
        response = subscriber.pull(
            request={"subscription": path, "max_messages": min(100, limit - len(found))},
            timeout=10,
        )
        if not response.received_messages:
            break
        for received in response.received_messages:
            message = received.message
            try:
                payload = json.loads(message.data or b"{}")
            except ValueError:
                payload = {}
            attributes = dict(message.attributes)
            source = attributes.get(SOURCE_ATTRIBUTE, "").rsplit("/", 1)[-1]
            found.setdefault(
                message.message_id,
                DeadLetter(
                    received.ack_id,
                    message.message_id,
                    source,
                    payload if isinstance(payload, dict) else {},
                    attributes,
                ),
            )
    return subscriber, path, list(found.values())


def _release(subscriber: Any, path: str, letters: list[DeadLetter]) -> None:
    """Back to the queue at once (not after the ack deadline): a later list sees them."""
    if letters:
        subscriber.modify_ack_deadline(
            request={
                "subscription": path,
                "ack_ids": [d.ack_id for d in letters],
                "ack_deadline_seconds": 0,
            }
        )


def _pull_or_fail(project: str) -> tuple[Any, str, list[DeadLetter]]:
    try:
        return pull(project)
    except Exception as exc:  # the emulator or the project unreachable, no permission, …
        _fail(f"cannot read subscription {INSPECT_SUBSCRIPTION}: {exc}", 3)
        raise  # unreachable: _fail exits


@deadletter_app.command("list")
def list_(run_id: RunOption = None) -> None:
    """Show the dead-lettered messages waiting (they stay in the queue)."""
    s = _settings()
    subscriber, path, letters = _pull_or_fail(s.project)
    _release(subscriber, path, letters)
    shown = [d for d in letters if run_id is None or d.run_id == run_id]
    if not shown:
        out.print("no dead letters" + (f" for run {run_id}" if run_id else ""))
        return
    title = f"{len(shown)} dead letters in {INSPECT_SUBSCRIPTION}"
    table = Table(title=title, title_justify="left")
    for col in ("message", "from", "replays to", "run", "what"):
        table.add_column(col)
    for d in sorted(shown, key=lambda d: (d.run_id or "", d.message_id)):
        what = d.payload.get("symbols") or d.payload.get("kind") or ""
        if isinstance(what, list):
            what = " ".join(map(str, what[:8])) + (" …" if len(what) > 8 else "")
        target = _targets(s).get(d.source, "? (unknown source)")
        table.add_row(d.message_id, d.source or "?", target, d.run_id or "", str(what))
    out.print(table)
    out.print("replay them once the cause is fixed: barlake deadletter replay [--run ID]")


@deadletter_app.command("replay")
def replay(run_id: RunOption = None) -> None:
    """Republish dead letters to the topic they came from, then acknowledge them."""
    from barlake.adapters.pubsub_bus import PubSubBus

    s = _settings()
    subscriber, path, letters = _pull_or_fail(s.project)
    chosen = [d for d in letters if run_id is None or d.run_id == run_id]
    unknown = [d for d in chosen if d.source not in _targets(s)]
    _release(subscriber, path, [d for d in letters if d not in chosen or d in unknown])
    chosen = [d for d in chosen if d not in unknown]
    bus = PubSubBus(s.project)
    replayed = 0
    for d in chosen:
        attributes = {k: v for k, v in d.attributes.items() if not k.startswith("CloudPubSub")}
        try:
            bus.publish(_targets(s)[d.source], d.payload, attributes or None)
        except Exception as exc:
            _release(subscriber, path, chosen[replayed:])
            _fail(f"replayed {replayed}, then cannot publish {d.message_id}: {exc}", 3)
        subscriber.acknowledge(request={"subscription": path, "ack_ids": [d.ack_id]})
        replayed += 1
    note = f"; {len(unknown)} of unknown source left in the queue" if unknown else ""
    out.print(f"replayed {replayed} dead letters" + (f" of run {run_id}" if run_id else "") + note)
