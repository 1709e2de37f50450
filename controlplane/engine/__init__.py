"""The control plane's domain services; no gRPC in here."""

from controlplane.engine.bus import EventBus, SubscriberLagged, Subscription
from controlplane.engine.engine import Engine
from controlplane.engine.fleet import NodeSession
from controlplane.engine.messages import (
    AckJournal,
    AckResult,
    AssignStep,
    AttemptKey,
    CancelAttempt,
    DrainNotice,
    NodeHello,
    NodeRegistration,
    StepResultReport,
    ToNode,
)
from controlplane.engine.nodes import NodeInfo
from controlplane.engine.runs import RunView

__all__ = [
    "AckJournal",
    "AckResult",
    "AssignStep",
    "AttemptKey",
    "CancelAttempt",
    "DrainNotice",
    "Engine",
    "EventBus",
    "NodeHello",
    "NodeInfo",
    "NodeRegistration",
    "NodeSession",
    "RunView",
    "StepResultReport",
    "SubscriberLagged",
    "Subscription",
    "ToNode",
]
