"""SubmitWorkflow validates authoritatively: every problem reported, nothing stored on failure."""

from __future__ import annotations

import sqlite3

import grpc
import pytest
from sample_workflows import ONE_STEP

from agentflow.v1 import controlplane_pb2, types_pb2

pytestmark = pytest.mark.component

BROKEN = """
apiVersion: agentflow/v1
kind: Workflow
name: broken
version: "1"
agents:
  - name: fetch
    module: ./echo.wasm
    dependsOn: [nope]
  - name: shout
    module: notamodule
    timeout: forever
  - module: ./echo.wasm
"""
TWO_LOCAL = """
apiVersion: agentflow/v1
kind: Workflow
name: two
version: "1"
agents:
  - name: first
    module: ./echo.wasm
  - name: second
    module: ./other.wasm
"""


async def submit_error(cp, workflow_yaml: str, **fields) -> grpc.aio.AioRpcError:
    request = controlplane_pb2.SubmitWorkflowRequest(workflow_yaml=workflow_yaml, **fields)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cp.admin.SubmitWorkflow(request, timeout=5)
    return caught.value


def table_count(cp, table: str) -> int:
    with sqlite3.connect(cp.data_dir / "state.db") as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


async def test_invalid_yaml_lists_every_problem_and_stores_nothing(cp) -> None:
    err = await submit_error(cp, BROKEN, source="broken.yaml", module_digests={"./echo.wasm": "sha256:" + "0" * 64})

    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    lines = err.details().splitlines()
    assert lines == [
        'broken.yaml: agents[0].dependsOn[0]: unknown agent "nope"',
        'broken.yaml: agents[1].module: "notamodule" is not a module '
        "(use a local path ending in .wasm or a sha256: digest)",
        'broken.yaml: agents[1].timeout: "forever" is not a duration (use e.g. "30s", "1m30s", "500ms" or "2h")',
        "broken.yaml: agents[2].name: required field is missing",
    ]
    listed = await cp.admin.ListRuns(controlplane_pb2.ListRunsRequest(), timeout=5)
    assert list(listed.runs) == []
    for table in ("workflows", "runs", "steps"):
        assert table_count(cp, table) == 0, table


async def test_unparseable_yaml_is_invalid_argument_naming_the_source(cp) -> None:
    err = await submit_error(cp, "agents: [\n  - name: x\n", source="cut.yaml")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("cut.yaml: ")


async def test_invalid_input_json_names_input(cp, echo_wasm) -> None:
    await cp.push(echo_wasm)
    err = await submit_error(cp, ONE_STEP, input_json="{not json", module_digests=cp.module_digests)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("input: not valid JSON")
    assert table_count(cp, "runs") == 0


async def test_local_module_missing_from_digests_names_the_agent(cp, echo_wasm) -> None:
    await cp.push(echo_wasm)
    err = await submit_error(cp, TWO_LOCAL, source="two.yaml", module_digests=cp.module_digests)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    lines = err.details().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("two.yaml: agents[1].module: ")
    assert "./other.wasm" in lines[0]
    assert table_count(cp, "workflows") == 0


async def test_digest_that_was_never_pushed_is_not_stored(cp, echo_wasm) -> None:
    await cp.push(echo_wasm)
    missing = "sha256:" + "ab" * 32
    digests = {"./echo.wasm": cp.module_digests["./echo.wasm"], "./other.wasm": missing}
    err = await submit_error(cp, TWO_LOCAL, source="two.yaml", module_digests=digests)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == f"two.yaml: agents[1].module: module {missing} is not stored (push it first)"
    assert table_count(cp, "workflows") == 0
    assert table_count(cp, "runs") == 0


async def test_valid_submit_stores_a_running_run(cp, echo_wasm) -> None:
    await cp.push(echo_wasm)
    run_id = await cp.submit(ONE_STEP, input={"n": 1})
    run = await cp.get_run(run_id)
    assert run.status == types_pb2.RUN_STATUS_RUNNING
    assert (run.workflow_name, run.workflow_version) == ("one", "1")
    assert run.input_json == '{"n": 1}'
    assert [(s.name, s.status) for s in run.steps] == [("only", types_pb2.STEP_STATUS_READY)]
    # the same workflow again reuses the stored workflow and starts a second run
    again = await cp.submit(ONE_STEP)
    assert (await cp.get_run(again)).workflow_id == run.workflow_id
    listed = await cp.admin.ListRuns(controlplane_pb2.ListRunsRequest(), timeout=5)
    assert [r.id for r in listed.runs] == [again, run_id]  # newest first
    assert table_count(cp, "workflows") == 1


async def test_get_and_cancel_of_an_unknown_run_are_not_found(cp) -> None:
    for call in (cp.admin.GetRun(controlplane_pb2.GetRunRequest(run_id="nope"), timeout=5),
                 cp.admin.CancelRun(controlplane_pb2.CancelRunRequest(run_id="nope"), timeout=5),
                 cp.admin.RetryRun(controlplane_pb2.RetryRunRequest(run_id="nope"), timeout=5)):  # fmt: skip
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert '"nope"' in caught.value.details()


@pytest.mark.parametrize(
    "input_json",
    [
        pytest.param('{"x": NaN}', id="nan"),
        pytest.param("Infinity", id="infinity"),
        pytest.param("[-Infinity]", id="minus-infinity"),
        pytest.param("[" * 100_000 + "]" * 100_000, id="too-deep"),
    ],
)
async def test_input_that_is_not_standard_json_is_invalid(cp, echo_wasm, input_json: str) -> None:
    await cp.push(echo_wasm)
    err = await submit_error(cp, ONE_STEP, input_json=input_json, module_digests=cp.module_digests)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("input: not valid JSON")
    assert table_count(cp, "runs") == 0


async def test_list_runs_with_a_negative_limit_is_invalid(cp) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cp.admin.ListRuns(controlplane_pb2.ListRunsRequest(limit=-1), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("limit: ")
