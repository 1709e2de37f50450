"""`agentflow events`: the control plane's event log, filtered, and followed as it grows."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, TextIO

from agentflow.cli import render
from agentflow.cli.client import Unreachable
from agentflow.cli.commands import EXIT_OK, RECONNECT_WINDOW_S, client_for
from agentflow.v1 import controlplane_pb2, types_pb2

DEFAULT_TAIL = 100
RECONNECT_PAUSE_S = 1.0


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], *, parents: list[argparse.ArgumentParser]
) -> None:
    events = sub.add_parser(
        "events",
        help="show the event log (workflow.*, agent.*, node.*, ...); --follow for new ones",
        parents=parents,
    )
    events.add_argument("--run", default="", metavar="RUN_ID", help="only this run's events")
    events.add_argument("--type", action="append", default=[], metavar="TYPE",
                        help="only this type (agent.failed) or family (agent.*); repeatable")  # fmt: skip
    events.add_argument("--tail", type=int, default=DEFAULT_TAIL, metavar="N",
                        help=f"only the last N (default {DEFAULT_TAIL}; 0: all)")  # fmt: skip
    events.add_argument("--follow", "-f", action="store_true", help="keep printing new events as they commit")
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    events.set_defaults(handler=cmd_events)


def event_json(e: types_pb2.Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "seq": e.seq,
        "type": e.type,
        "time": render.timestamp(e.time, e.HasField("time")),
        "run_id": e.run_id,
        "step": e.step,
        "attempt": e.attempt,
        "node": e.node,
        "data": json.loads(e.data_json or "{}"),
    }


def event_line(e: types_pb2.Event) -> str:
    where = e.run_id + (f"/{e.step}" if e.step else "") + (f"#{e.attempt}" if e.attempt else "")
    data = json.loads(e.data_json or "{}")
    details = " ".join(f"{k}={_short(v)}" for k, v in sorted(data.items()))
    parts = [render.timestamp(e.time, e.HasField("time")) or "", f"{e.type:<20}", where or "-"]
    if e.node:
        parts.append(f"node={e.node}")
    if details:
        parts.append(details)
    return "  ".join(parts)


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cmd_events(args: argparse.Namespace, out: TextIO) -> int:
    request = controlplane_pb2.StreamEventsRequest(
        run_id=args.run, types=args.type, tail=max(args.tail, 0), follow=args.follow
    )
    last_seq = 0
    give_up_at: float | None = None
    while True:
        try:
            with client_for(args) as client:
                for event in client.stream_events(request):
                    last_seq = event.seq
                    give_up_at = None
                    print(json.dumps(event_json(event)) if args.json else event_line(event), file=out, flush=True)
            return EXIT_OK
        except Unreachable:
            # Following across a control-plane restart: go on after the last event printed.
            if not args.follow:
                raise
            now = time.monotonic()
            give_up_at = give_up_at or now + RECONNECT_WINDOW_S
            if now >= give_up_at:
                raise
            time.sleep(RECONNECT_PAUSE_S)
            request = controlplane_pb2.StreamEventsRequest(
                run_id=args.run, types=args.type, after_seq=last_seq, tail=0 if last_seq else request.tail, follow=True
            )
        except KeyboardInterrupt:
            return EXIT_OK
