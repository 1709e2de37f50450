"""Workflow spec v1: parsing and validating workflow YAML, and the types it turns into."""

from agentflow.spec.codec import resolve_modules, spec_from_dict, spec_to_dict, workflow_digest
from agentflow.spec.duration import format_duration, parse_duration
from agentflow.spec.errors import InvalidWorkflow, Problem, SpecError
from agentflow.spec.model import (
    API_VERSION,
    DIGEST_PREFIX,
    KIND,
    AgentSpec,
    Budget,
    Capabilities,
    LLMConfig,
    ModuleRef,
    Resources,
    RetryPolicy,
    WorkflowSpec,
    is_digest,
)
from agentflow.spec.parse import load_workflow, parse_workflow_dict
from agentflow.spec.quantity import format_cpu, format_memory, parse_cpu, parse_memory
from agentflow.spec.refs import Reference, ReferenceMissing, evaluate, find_references
from agentflow.spec.suggest import closest

__all__ = [
    "API_VERSION",
    "DIGEST_PREFIX",
    "KIND",
    "AgentSpec",
    "Budget",
    "Capabilities",
    "InvalidWorkflow",
    "LLMConfig",
    "ModuleRef",
    "Problem",
    "Reference",
    "ReferenceMissing",
    "Resources",
    "RetryPolicy",
    "SpecError",
    "WorkflowSpec",
    "closest",
    "evaluate",
    "find_references",
    "format_cpu",
    "format_duration",
    "format_memory",
    "is_digest",
    "load_workflow",
    "parse_cpu",
    "parse_duration",
    "parse_memory",
    "parse_workflow_dict",
    "resolve_modules",
    "spec_from_dict",
    "spec_to_dict",
    "workflow_digest",
]
