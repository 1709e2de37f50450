"""What nodes report about their attempts: started, and results (applied only for the current
attempt from the node it was placed on: fencing lives in `transitions.apply_result`)."""

from __future__ import annotations

import dataclasses
import logging
import random

from agentflow.vocabulary import NodeStatus, StepStatus
from controlplane.engine.core import Core
from controlplane.engine.fleet import Fleet, NodeSession
from controlplane.engine.messages import AckJournal, AckResult, AttemptKey, StepResultReport
from controlplane.engine.transitions import apply_result, start_step
from controlplane.store import JournalRecord, NodeRecord, Tx

log = logging.getLogger(__name__)


class Reports:
    def __init__(self, core: Core, fleet: Fleet, *, rng: random.Random) -> None:
        self._core = core
        self._fleet = fleet
        self._rng = rng

    async def started(self, session: NodeSession, key: AttemptKey) -> None:
        now = self._core.clock.now()
        async with self._core.tx(wait=False, urgent=False) as tx:  # a notice: committed with what follows
            step = tx.step(key.run_id, key.step)
            if (
                step is None
                or step.attempt != key.attempt
                or step.status is not StepStatus.ASSIGNED
                or step.node_id != session.node_id
            ):
                return
            start_step(tx, step, node_name=session.node_name, now=now)

    async def result(self, session: NodeSession, report: StepResultReport) -> None:
        now = self._core.clock.now()
        async with self._core.tx(wait=False) as tx:
            outcome = apply_result(
                tx,
                report,
                node_id=session.node_id,
                node_name=session.node_name,
                now=now,
                rng=self._rng,
                takes_work=lambda node_id: self._takes_work(tx, node_id),
            )
        # Ack only after the commit: the node keeps the result in its outbox until then. The
        # stream reads on meanwhile, so results that arrive together are committed together.
        ack = AckResult(key=report.key, stale=not outcome.applied)

        def send() -> None:
            for node_id, message in outcome.messages:
                self._fleet.send(node_id, message)
            self._fleet.send(session.node_id, ack)

        self._core.after_commit(tx, send, failed=lambda exc: _drop(session, exc))

    def _takes_work(self, tx: Tx, node_id: str) -> NodeRecord | None:
        """The node's record if more may be placed on it (ready, streaming, not draining)."""
        state = self._fleet.liveness.get(node_id)
        session = self._fleet.sessions.get(node_id)
        if state is None or state.status is not NodeStatus.READY or session is None or not self._fleet.current(session):
            return None
        record = tx.node(node_id)
        return None if record is None or record.draining else record

    async def journal(self, session: NodeSession, entries: tuple[JournalRecord, ...]) -> None:
        """Store the LLM calls a node's router journaled; a later attempt anywhere replays them."""
        if not entries:
            return
        async with self._core.tx(wait=False) as tx:
            tx.add_journal(entries)
        ack = AckJournal(entries=tuple(dataclasses.replace(e, entry_json="") for e in entries))
        self._core.after_commit(
            tx, lambda: self._fleet.send(session.node_id, ack), failed=lambda exc: _drop(session, exc)
        )


def _drop(session: NodeSession, exc: BaseException) -> None:
    """What the node sent was not kept (the commit failed, say on a full disk): end its stream,
    so that it connects again and sends once more what it still holds unacknowledged."""
    log.warning("could not store what a node reported; closing its stream", extra={
        "node": session.node_name, "error": str(exc)})  # fmt: skip
    session.close()
