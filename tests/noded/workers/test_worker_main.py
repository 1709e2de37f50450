"""The worker process on its own, driven over its pipes like the pool does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from noded.sandbox import StepJob
from noded.workers.protocol import encode_frame, job_to_dict, read_frame_sync, result_from_dict

pytestmark = pytest.mark.component

MakeJob = Callable[..., StepJob]


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "noded.workers.worker_main", "--cache-dir", str(tmp_path / "cache")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def send(proc: subprocess.Popen[bytes], message: dict[str, object]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(encode_frame(message))
    proc.stdin.flush()


def receive(proc: subprocess.Popen[bytes]) -> dict[str, object] | None:
    assert proc.stdout is not None
    return read_frame_sync(proc.stdout.fileno())


def test_ready_then_jobs_then_clean_exit(worker: subprocess.Popen[bytes], agent_job: MakeJob) -> None:
    ready = receive(worker)
    assert ready is not None and ready["type"] == "ready" and ready["pid"] == worker.pid
    assert str(ready["fingerprint"]).startswith("wasmtime-")

    for stdin in (b"[1]", b'{"b": 2}'):
        send(worker, {"type": "job", "job": job_to_dict(agent_job("tests/agents/echo", stdin=stdin))})
        reply = receive(worker)
        assert reply is not None and reply["type"] == "result"
        assert isinstance(reply["result"], dict)
        assert result_from_dict(reply["result"]).output_json == stdin.decode().replace(" ", "")

    worker.send_signal(signal.SIGINT)  # ignored: the parent owns shutdown
    send(worker, {"type": "job", "job": job_to_dict(agent_job("tests/agents/fail"))})
    reply = receive(worker)
    assert reply is not None and isinstance(reply["result"], dict)
    assert result_from_dict(reply["result"]).exit_code == 3

    assert worker.stdin is not None
    worker.stdin.close()
    assert worker.wait(timeout=10) == 0


def test_host_side_error_is_reported_and_worker_keeps_serving(
    worker: subprocess.Popen[bytes], agent_job: MakeJob
) -> None:
    receive(worker)
    send(worker, {"type": "job", "job": job_to_dict(agent_job("tests/agents/echo", scratch_dir="/nonexistent"))})
    reply = receive(worker)
    assert reply is not None and reply["type"] == "error"
    assert "FileNotFoundError" in str(reply["error"])
    send(worker, {"type": "job", "job": job_to_dict(agent_job("tests/agents/echo", stdin=b"1"))})
    reply = receive(worker)
    assert reply is not None and reply["type"] == "result"


def test_unexpected_frame_ends_the_worker(worker: subprocess.Popen[bytes]) -> None:
    receive(worker)
    send(worker, {"type": "bogus"})
    assert worker.wait(timeout=10) == 2
    assert receive(worker) is None
    assert worker.stderr is not None
    assert b"protocol error" in worker.stderr.read()


def test_core_dumps_disabled(worker: subprocess.Popen[bytes]) -> None:
    receive(worker)
    limits = Path(f"/proc/{worker.pid}/limits").read_text()
    line = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert line.split()[4:6] == ["0", "0"]
    assert os.path.exists(f"/proc/{worker.pid}")


def test_a_step_runs_in_a_thread_of_its_own_and_hands_back_its_answer_or_its_error() -> None:
    """Each step's thread is new (its Landlock domain ends with it); what it returns or raises
    reaches the worker's loop."""
    import threading

    from noded.workers.worker_main import _in_step_thread

    caller = threading.get_ident()
    idents = [_in_step_thread(threading.get_ident) for _ in range(3)]
    assert caller not in idents
    assert _in_step_thread(lambda: "answer") == "answer"

    def fails() -> None:
        raise ValueError("in the step")

    with pytest.raises(ValueError, match="in the step"):
        _in_step_thread(fails)
