"""What an event looks like on NATS: its subject, its stream, and its JSON body.

Subjects are the event types themselves ("agent.completed"), as the reference design names
them; each type family has one stream. The body carries the reference's `Event` fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

from agentflow.vocabulary import EventType
from controlplane.store import EventRecord, event_id

SOURCE = "agentflow/controlplane"
DUPLICATE_WINDOW = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    max_age: timedelta

    @property
    def families(self) -> frozenset[str]:
        return frozenset(s.removesuffix(".*") for s in self.subjects)


# The reference's two streams, plus NODES for the fleet's own events (node.*, module.*), which
# it does not place. Limits retention (not work-queue): any number of consumers may read.
STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec("WORKFLOWS", ("workflow.*", "agent.*"), timedelta(hours=24)),
    StreamSpec("METRICS", ("metrics.*", "resource.*", "cost.*"), timedelta(days=7)),
    StreamSpec("NODES", ("node.*", "module.*"), timedelta(days=7)),
)


def stream_for(type: EventType) -> StreamSpec:
    family = type.value.partition(".")[0]
    for stream in STREAMS:
        if family in stream.families:
            return stream
    raise LookupError(f"no stream takes {type.value!r} events")


def subject_of(event: EventRecord) -> str:
    """What the event is about, as a path: run/<id>[/step/<name>], or node/<name>."""
    if event.run_id:
        return f"run/{event.run_id}/step/{event.step}" if event.step else f"run/{event.run_id}"
    if event.node:
        return f"node/{event.node}"
    if event.type is EventType.WORKFLOW_CREATED and "id" in event.data:
        return f"workflow/{event.data['id']}"
    if event.type is EventType.MODULE_PUSHED and "digest" in event.data:
        return f"module/{event.data['digest']}"
    return ""


def envelope(event: EventRecord, *, store_id: str, trace: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON body published for `event`."""
    body: dict[str, Any] = {
        "id": event_id(store_id, event.seq),
        "type": event.type.value,
        "source": f"{SOURCE}/{store_id}",
        "subject": subject_of(event),
        "timestamp": event.time.astimezone(UTC).isoformat(timespec="microseconds"),
        "data": event.data,
        "trace": trace or {},
        "seq": event.seq,
    }
    for key in ("run_id", "step", "node"):
        if value := getattr(event, key):
            body[key] = value
    if event.attempt:
        body["attempt"] = event.attempt
    return body


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
