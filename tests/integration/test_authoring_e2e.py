"""Writing agents end to end, in C and in AssemblyScript: `agentflow agent new`, `agentflow agent
build` (zig cc from the ziglang wheel; asc installed from the npm registry by npm install) and
`agentflow run workflow.yaml --wait --json` against a real control plane and noded.

The scaffolded agent is run as it is written: input in, output out, a `log` line in the step's
stderr, a fetch from an allowed host, a denied fetch it handles, and a failure. A probe agent per
language (tests/agents/authoring/probe.c, probe.ts) covers the rest of each library: a timeout, a
chosen exit code with its message, llm.complete denied and answered (through a dev router).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster import (
    REPO_ROOT,
    CliResult,
    EchoRequest,
    cli,
    http_server,
    nodes_ready,
    start_controlplane,
    start_noded,
    start_router,
    wait_for,
    write_workflow,
)

from agentflow.wasm_check import module_problem

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

LANGS = ["c", "assemblyscript"]
PROBE_SOURCES = REPO_ROOT / "tests" / "agents" / "authoring"
PROBES = {"c": ("probe.c", "probe.c"), "assemblyscript": ("probe.ts", "assembly/index.ts")}
"""language -> (the probe's source here, where it goes in a scaffolded agent named `probe`)"""
BUILD_TIMEOUT_S = 600.0  # the first npm install, or zig's first wasi-libc build


def agentflow(*args: str, cwd: Path, timeout: float = BUILD_TIMEOUT_S) -> CliResult:
    """The CLI without a control plane (agent new / agent build)."""
    proc = subprocess.run([sys.executable, "-m", "agentflow.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False)  # fmt: skip
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def readme_example(lang: str) -> str:
    """The complete agent of README.md's "## Writing agents" for `lang` (its ```c or ```ts block)."""
    section = (REPO_ROOT / "README.md").read_text().split("\n## Writing agents\n", 1)[1].split("\n## ", 1)[0]
    fence = {"c": "c", "assemblyscript": "ts"}[lang]
    [source] = re.findall(rf"^```{fence}\n(.*?)^```$", section, flags=re.DOTALL | re.MULTILINE)
    return str(source)


def require_toolchain(lang: str) -> None:
    """The AssemblyScript build needs node and npm; without them these tests fail (never skip)."""
    if lang == "assemblyscript":
        missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
        if missing:
            pytest.fail(
                f"{' and '.join(missing)} not found on PATH: install Node.js and npm (Debian/Ubuntu: "
                "apt-get install nodejs npm) to build the AssemblyScript agents of this test",
                pytrace=False,
            )


def new_and_build(lang: str, name: str, parent: Path) -> Path:
    """`agentflow agent new NAME --lang LANG` in `parent`, then `agentflow agent build` inside it."""
    require_toolchain(lang)
    made = agentflow("agent", "new", name, "--lang", lang, cwd=parent)
    assert made.code == 0, made.err
    agent = parent / name
    assert made.out.startswith(f"created {'C' if lang == 'c' else 'AssemblyScript'} agent {name} in {name}:")
    built = agentflow("agent", "build", cwd=agent)
    assert built.code == 0, built.out + built.err
    module = agent / "build" / f"{name}.wasm"
    assert built.out.startswith(f"built {module} (")
    assert module_problem(module.read_bytes()) is None
    if lang == "assemblyscript":  # npm really installed the compiler and the WASI shim
        assert "installing the AssemblyScript toolchain" in built.err
        installed = json.loads((agent / "node_modules" / "assemblyscript" / "package.json").read_text())
        assert installed["version"].startswith("0.28.")
        assert (agent / "node_modules" / "@assemblyscript" / "wasi-shim" / "asconfig.json").is_file()
    return agent


@pytest.fixture
def web() -> Iterator[int]:
    with http_server(EchoRequest) as port:
        yield port


@pytest.fixture(scope="module")
def probes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """language -> the probe agent's module, built with `agentflow agent build` (once per module)."""
    root = tmp_path_factory.mktemp("probes")
    modules: dict[str, Path] = {}
    for lang in LANGS:
        parent = root / lang
        parent.mkdir()
        require_toolchain(lang)
        assert agentflow("agent", "new", "probe", "--lang", lang, cwd=parent).code == 0
        source, destination = PROBES[lang]
        shutil.copyfile(PROBE_SOURCES / source, parent / "probe" / destination)
        built = agentflow("agent", "build", str(parent / "probe"), cwd=root)
        assert built.code == 0, built.out + built.err
        modules[lang] = parent / "probe" / "build" / "probe.wasm"
    return modules


def step(run: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [s for s in run["steps"] if s["name"] == name]
    return found


def run_agent(server: str, agent: Path, run_input: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """`agentflow run workflow.yaml --input ... --wait --json`, from the agent's directory."""
    done = cli(server, "run", "workflow.yaml", "--input", json.dumps(run_input), "--wait", "--json", cwd=agent)
    assert done.code in (0, 1), done.out + done.err
    return done.code, done.json()


@pytest.mark.parametrize("lang", LANGS)
def test_a_scaffolded_agent_from_nothing_to_a_result(lang: str, cluster, tmp_path: Path, web: int) -> None:
    agent = new_and_build(lang, "hello", tmp_path)
    workflow = agent / "workflow.yaml"
    text = workflow.read_text()
    assert "allowedHosts: [example.com]" in text
    workflow.write_text(text.replace("allowedHosts: [example.com]", f"allowedHosts: [example.com, '127.0.0.1:{web}']"))

    # Input in, output out, and the agent's log line in the step's stderr.
    code, run = run_agent(cluster.server, agent, {"text": "hello wasm world"})
    assert code == 0 and run["status"] == "succeeded", run
    assert run["outputs"]["hello"] == {"text": "hello wasm world", "words": 3, "chars": 16, "shout": "HELLO WASM WORLD"}
    assert "[info] hello: 3 words, 16 characters" in step(run, "hello")["stderr"]

    # An allowed host is fetched through the node.
    code, run = run_agent(cluster.server, agent, {"text": "a b", "url": f"http://127.0.0.1:{web}/page"})
    assert code == 0, run
    assert run["outputs"]["hello"]["fetch"] == {"status": 200}

    # A host outside capabilities.http.allowedHosts is denied; the agent handles AF_ERR_DENIED / ERR_DENIED.
    code, run = run_agent(cluster.server, agent, {"text": "a b", "url": f"http://localhost:{web}/page"})
    assert code == 0 and run["status"] == "succeeded", run
    assert run["outputs"]["hello"]["fetch"] == {"error": "denied", "code": -2}
    stderr = step(run, "hello")["stderr"]
    assert f"localhost:{web} is not in capabilities.http.allowedHosts" in stderr  # the node says why
    assert f"[warn] hello: http.fetch of http://localhost:{web}/page denied" in stderr  # the agent says so

    # A non-zero exit fails the run, with the agent's message in the step's stderr.
    code, run = run_agent(cluster.server, agent, {"words": ["no", "text"]})
    assert code == 1 and run["status"] == "failed", run
    failed = step(run, "hello")
    assert (failed["status"], failed["exit_code"], failed["error"]) == ("failed", 1, "exited with code 1")
    assert "hello: input.text is missing or not a string" in failed["stderr"]
    assert run["outputs"] == {}


@pytest.mark.parametrize("lang", LANGS)
def test_the_probe_times_out_fails_and_is_denied_the_llm(
    lang: str, cluster, tmp_path: Path, web: int, probes: dict[str, Path]
) -> None:
    module = probes[lang]
    workflow = write_workflow(
        tmp_path / "probe.yaml",
        "apiVersion: agentflow/v1\nkind: Workflow\nname: probe\nversion: '1'\nagents:\n"
        f"  - name: spin\n    module: {module}\n    timeout: 1s\n    input: {{mode: spin}}\n"
        f"  - name: fail\n    module: {module}\n    input: {{mode: fail, message: the disk is on fire, code: 7}}\n"
        f"  - name: llm\n    module: {module}\n    input: {{mode: llm, prompt: hi, flag: true, ratio: 0.25}}\n"
        f"  - name: fetch\n    module: {module}\n    capabilities: {{http: {{allowedHosts: ['127.0.0.1:{web}']}}}}\n"
        f"    input: {{mode: fetch, url: 'http://127.0.0.1:{web}/x?y=1', flag: false}}\n",
    )
    done = cli(cluster.server, "run", str(workflow), "--wait", "--json")
    assert done.code == 1, done.out + done.err
    run = done.json()
    assert run["status"] == "failed"

    spin = step(run, "spin")
    assert (spin["status"], spin["error"]) == ("failed", "wall time limit of 1.0s reached (timed out)")
    assert "[info] probe: spinning" in spin["stderr"]

    fail = step(run, "fail")
    assert (fail["status"], fail["exit_code"], fail["error"]) == ("failed", 7, "exited with code 7")
    assert "probe: the disk is on fire" in fail["stderr"]

    # No capabilities.llm: llm.complete is denied, and the agent reports it.
    assert step(run, "llm")["status"] == "succeeded"
    assert run["outputs"]["llm"] == {"mode": "llm", "flag": True, "ratio": 0.25,
                                     "result": {"error": "denied", "code": -2}}  # fmt: skip
    assert "[error] probe: llm.complete failed: denied (-2)" in step(run, "llm")["stderr"]

    echoed = json.dumps({"path": "/x?y=1", "host": f"127.0.0.1:{web}"})
    assert run["outputs"]["fetch"] == {"mode": "fetch", "flag": False, "result": {"status": 200, "body": echoed}}


@pytest.mark.parametrize("lang", LANGS)
def test_the_probe_asks_the_llm_through_the_router(lang: str, tmp_path: Path, probes: dict[str, Path]) -> None:
    cp = start_controlplane(tmp_path / "cp")
    router = start_router(tmp_path / "router")
    server = cp.state["grpc"]
    node = start_noded(tmp_path / "node", server, name="n1", extra=["--router", router.state["http"]])
    try:
        wait_for(lambda: nodes_ready(server, 1), timeout=30, what="the node")
        workflow = write_workflow(
            tmp_path / "ask.yaml",
            "apiVersion: agentflow/v1\nkind: Workflow\nname: ask\nversion: '1'\nagents:\n"
            f"  - name: ask\n    module: {probes[lang]}\n    capabilities: {{llm: true}}\n"
            "    llm: {model: gpt-4o-mini, temperature: 0}\n"
            "    input: {mode: llm, prompt: 'Say \"hi\" in one word'}\n",
        )
        done = cli(server, "run", str(workflow), "--wait", "--json")
        assert done.code == 0, done.out + done.err
        result = done.json()["outputs"]["ask"]["result"]
        assert result["content"].startswith("[agentflow dev provider]"), result
        assert 'Say "hi" in one word' in result["content"]
    finally:
        node.stop()
        router.stop()
        cp.stop()


@pytest.mark.parametrize("lang", LANGS)
def test_the_readme_example_builds_and_handles_what_it_is_denied(lang: str, cluster, tmp_path: Path) -> None:
    require_toolchain(lang)
    assert agentflow("agent", "new", "summary", "--lang", lang, cwd=tmp_path).code == 0
    agent = tmp_path / "summary"
    (agent / ("summary.c" if lang == "c" else "assembly/index.ts")).write_text(readme_example(lang))
    built = agentflow("agent", "build", cwd=agent)
    assert built.code == 0, built.out + built.err

    # The scaffold's workflow grants no llm and allows only example.com: the fetch of another host
    # is logged and skipped, and the denied llm.complete fails the step with exit code 3.
    code, run = run_agent(cluster.server, agent, {"text": "some text", "url": "http://localhost:9/page"})
    assert code == 1, run
    failed = step(run, "summary")
    assert (failed["exit_code"], failed["error"]) == (3, "exited with code 3")
    assert "[warn] http://localhost:9/page is not allowed; summarising the text alone" in failed["stderr"]
    denied = "llm.complete: denied (-2)" if lang == "c" else "llm.complete failed: denied (-2)"
    assert denied in failed["stderr"]
