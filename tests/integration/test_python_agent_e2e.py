"""A Python agent (a WASI preview 2 component) through real processes: pushed like a module,
compiled once by noded ahead of its step, run in its worker and cgroup, its LLM call answered
by the host's router, its capabilities gated like a C agent's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cluster import REPO_ROOT, AICluster, cli

from agentflow.authoring.python import build_python_agent

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_the_python_example_summarises_with_the_dev_provider(ai_cluster: AICluster, tmp_path: Path) -> None:
    server, node = ai_cluster.server, ai_cluster.node
    example = REPO_ROOT / "examples" / "agents" / "py_summarize"
    build_python_agent(example, example / "build" / "py_summarize.wasm", progress=lambda _: None)
    text = "Python agents run as WebAssembly components and ask their LLM through the host's router."
    done = cli(server, "run", str(REPO_ROOT / "examples" / "py_summarize.yaml"), "--input", json.dumps({"text": text}),
               "--wait", "--json", timeout=240)  # fmt: skip
    assert done.code == 0, done.out + done.err + node.log_tail()
    run = done.json()
    output = run["outputs"]["summarize"]
    assert output["summary"].startswith("[agentflow dev provider]") and output["chars"] == len(text)
    step = run["steps"][0]
    assert f"summarising {len(text)} characters" in step["stderr"]
    assert step["llm"]["calls"] == 1
    assert step["usage"]["peak_memory_bytes"] > 0
    assert "compiled a component ahead of its step" in node.log_file.read_text()


def test_python_agents_fail_deny_and_time_out_like_any_other(
    ai_cluster: AICluster, tmp_path: Path, python_agent: Path
) -> None:
    server = ai_cluster.server
    steps = {
        "echo": "{do: echo, text: hi}",
        "denied": "{do: fetch, url: 'https://example.com/'}",
        "fails": "{do: fail}",
        "spins": "{do: spin}",
    }
    agents = "".join(
        f"  - name: {name}\n    module: {python_agent}\n    input: {value}\n"
        + ("    timeout: 2s\n" if name == "spins" else "")
        for name, value in steps.items()
    )
    workflow = tmp_path / "py.yaml"
    workflow.write_text(f"apiVersion: agentflow/v1\nkind: Workflow\nname: py\nversion: '1'\nagents:\n{agents}")
    done = cli(server, "run", str(workflow), "--wait", "--json", timeout=240)
    assert done.code == 1, done.out + done.err  # two of its steps fail
    by_name = {s["name"]: s for s in done.json()["steps"]}
    assert done.json()["outputs"]["echo"]["input"] == {"do": "echo", "text": "hi"}
    assert done.json()["outputs"]["denied"] == {"denied": [-2, "DENIED", "http.fetch: capability not granted"]}
    assert by_name["fails"]["status"] == "failed"
    assert by_name["fails"]["error"] == "run returned an error: asked to fail"
    assert by_name["spins"]["status"] == "failed" and "wall time limit of 2.0s reached" in by_name["spins"]["error"]


def test_a_scaffolded_python_agent_from_nothing_to_a_result(ai_cluster: AICluster, tmp_path: Path) -> None:
    """The three commands: agentflow agent new --lang python, agentflow agent build, agentflow run."""
    server = ai_cluster.server
    made = cli(server, "agent", "new", "hello-py", "--lang", "python", cwd=tmp_path)
    assert made.code == 0, made.err
    assert made.out.startswith("created Python agent hello-py in hello-py:")
    agent = tmp_path / "hello-py"
    built = cli(server, "agent", "build", cwd=agent, timeout=240)
    assert built.code == 0, built.out + built.err
    module = agent / "build" / "hello-py.wasm"
    assert built.out.startswith(f"built {module} (Python")

    def run(run_input: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        done = cli(server, "run", "workflow.yaml", "--input", json.dumps(run_input), "--wait", "--json", cwd=agent,
                   timeout=240)  # fmt: skip
        assert done.code in (0, 1), done.out + done.err
        return done.code, done.json()

    code, result = run({"text": "hello wasm world", "url": "http://localhost:9/", "ask": "What is WebAssembly?"})
    assert code == 0, result
    output = result["outputs"]["hello-py"]
    assert output["words"] == 3 and output["shout"] == "HELLO WASM WORLD"
    assert output["fetched"] == {"denied": "http.fetch denied: localhost:9 is not in capabilities.http.allowedHosts"}
    assert output["answer"].startswith("[agentflow dev provider]")
    stderr = result["steps"][0]["stderr"]
    assert "[info] 16 characters to look at" in stderr and "[warn] not allowed to fetch" in stderr

    code, result = run({"no": "text"})
    assert code == 1 and result["status"] == "failed"
    assert result["steps"][0]["error"] == 'run returned an error: give the step an input like {"text": "..."}'
