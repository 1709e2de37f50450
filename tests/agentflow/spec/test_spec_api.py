import pytest

import agentflow.spec as spec_package

pytestmark = pytest.mark.unit


def test_public_api_is_exported() -> None:
    expected = {
        "AgentSpec",
        "Capabilities",
        "LLMConfig",
        "ModuleRef",
        "Resources",
        "RetryPolicy",
        "WorkflowSpec",
        "load_workflow",
        "parse_workflow_dict",
        "InvalidWorkflow",
        "Problem",
        "SpecError",
        "parse_cpu",
        "parse_memory",
        "parse_duration",
        "format_cpu",
        "format_memory",
        "format_duration",
        "evaluate",
        "ReferenceMissing",
        "spec_to_dict",
        "spec_from_dict",
        "resolve_modules",
        "workflow_digest",
        "closest",
    }
    assert expected <= set(spec_package.__all__)
    for name in spec_package.__all__:
        assert hasattr(spec_package, name), name
