"""A worker process: runs one step at a time for ``WorkerPool``.

    python -m noded.workers.worker_main --cache-dir DIR [--parent-pid PID]

Pipes. Job frames arrive on stdin and result frames leave on stdout (see ``protocol``).
Before anything else the worker moves both pipes to private descriptors and points fd 0
at /dev/null and fd 1 at stderr, so that nothing but ``write_frame_sync`` can ever reach
the result pipe — not ``print``, not C libraries, not wasmtime-py (which prints errors
raised in WASI output callbacks to stdout). stderr stays the parent's stderr (the log).

Walls. First of all, while it has a single thread, the worker applies the process layers of
``noded.sandbox.confine`` (its own network namespace, the seccomp filter) and says in its
ready frame which took effect; each step then runs in a thread of its own that Landlocks
itself once the step's module is loaded and its directories are open. With
``--confinement required`` a layer that cannot be applied stops the worker with an error
frame instead.

Signals. SIGINT is ignored: the parent owns shutdown and sends SIGTERM/SIGKILL, or
closes stdin, which makes the worker exit cleanly after the current job. On Linux the
worker also asks to be SIGKILLed if its parent dies, so a crashed noded leaves no
workers behind. Core dumps are disabled (RLIMIT_CORE 0).
"""

from __future__ import annotations

import _thread
import argparse
import functools
import logging
import os
import resource
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from agentflow.daemon import set_parent_death_signal
from noded.sandbox import HostCallError, HostCallRefused
from noded.sandbox.confine import Confinement, ConfinementError, WorkerConfinement, apply_process_layers
from noded.sandbox.engine import EpochTicker, create_engine
from noded.sandbox.executor import run_step
from noded.sandbox.hostcalls import Relay
from noded.sandbox.module_cache import CompiledModuleCache
from noded.workers.errors import ProtocolError
from noded.workers.protocol import (
    ERROR,
    HOST_CALL,
    HOST_REPLY,
    JOB,
    READY,
    RESULT,
    job_from_dict,
    read_frame_sync,
    result_to_dict,
    write_frame_sync,
)

log = logging.getLogger("noded.workers.worker")

T = TypeVar("T")


def _take_pipes() -> tuple[int, int]:
    """Moves stdin/stdout to private fds; fd 0 becomes /dev/null, fd 1 a copy of stderr."""
    job_fd = os.dup(0)
    result_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return job_fd, result_fd


def _die_with_parent(parent_pid: int | None) -> None:
    if not set_parent_death_signal(signal.SIGKILL):
        return
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(0)  # the parent died before the request took effect


def _relay(job_fd: int, result_fd: int) -> Relay:
    """Host calls that the node answers go up the result pipe; the reply comes down the job pipe."""

    def relay(op: str, request: Any) -> Any:
        write_frame_sync(result_fd, {"type": HOST_CALL, "op": op, "request": request})
        reply = read_frame_sync(job_fd)
        if reply is None or reply.get("type") != HOST_REPLY:
            raise ProtocolError(f"expected a host reply, got {None if reply is None else reply.get('type')!r}")
        if "code" in reply:
            try:
                code = HostCallError(int(reply["code"]))
            except (TypeError, ValueError):
                code = HostCallError.INTERNAL
            raise HostCallRefused(code, str(reply.get("log") or code.name))
        return reply.get("response")

    return relay


def _in_step_thread(run: Callable[[], T]) -> T:
    """`run()` in a fresh thread (a step's Landlock domain must not outlive the step).

    A bare `_thread` and a lock the thread releases when `run` returns: `threading.Thread`'s
    start handshake and join cost twice as much (350 against 190 us a step, measured here).
    """
    box: list[T] = []
    failure: list[BaseException] = []
    done = _thread.allocate_lock()
    done.acquire()

    def target() -> None:
        try:
            box.append(run())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)
        finally:
            done.release()

    _thread.start_new_thread(target, ())
    done.acquire()
    if failure:
        raise failure[0]
    return box[0]


def serve(job_fd: int, result_fd: int, cache_dir: str, walls: WorkerConfinement) -> int:
    """The worker loop: ready, then job → result until EOF. Returns the exit status."""
    engine = create_engine()
    EpochTicker(engine).start()
    cache = CompiledModuleCache(cache_dir)
    write_frame_sync(
        result_fd,
        {"type": READY, "pid": os.getpid(), "fingerprint": cache.fingerprint,
         "layers": sorted(walls.layers), "problems": list(walls.problems)},
    )  # fmt: skip
    while True:
        message = read_frame_sync(job_fd)
        if message is None:
            return 0
        if message["type"] != JOB or not isinstance(message.get("job"), dict):
            raise ProtocolError(f"expected a job frame, got {message['type']!r}")
        job = job_from_dict(message["job"])
        reply: dict[str, Any]
        restrict = walls.step_restriction(writable=[job.scratch_dir, *job.writable_paths], readable=job.allowed_paths)
        relay = _relay(job_fd, result_fd)
        try:
            if restrict is None:
                result = run_step(job, engine=engine, cache=cache, relay=relay)
            else:
                result = _in_step_thread(
                    functools.partial(run_step, job, engine=engine, cache=cache, relay=relay, restrict=restrict)
                )
        except Exception as exc:  # host-side problem: report it, keep serving
            log.exception("job for module %s failed on the host side", job.digest)
            reply = {"type": ERROR, "error": f"{type(exc).__name__}: {exc}"}
        else:
            reply = {"type": RESULT, "result": result_to_dict(result)}
        write_frame_sync(result_fd, reply)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="noded.workers.worker_main", description="Runs agent steps for the noded worker pool."
    )
    parser.add_argument("--cache-dir", required=True, help="compiled-module cache directory")
    parser.add_argument("--parent-pid", type=int, default=None, help="exit at once if this is not the parent")
    parser.add_argument(
        "--confinement", choices=[c.value for c in Confinement], default=Confinement.AUTO.value,
        help="network namespace, seccomp and Landlock: what the host allows (auto), all or fail (required), none",
    )  # fmt: skip
    args = parser.parse_args(argv)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    job_fd, result_fd = _take_pipes()
    _die_with_parent(args.parent_pid)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format=f"worker[{os.getpid()}] %(levelname)s %(message)s"
    )
    try:
        walls = apply_process_layers(Confinement(args.confinement))
    except ConfinementError as exc:
        write_frame_sync(result_fd, {"type": ERROR, "error": f"confinement required but not possible: {exc}"})
        return 3
    for problem in walls.problems:
        log.warning("worker runs without a sandbox layer: %s", problem)
    try:
        return serve(job_fd, result_fd, args.cache_dir, walls)
    except BrokenPipeError:
        return 0  # the pool went away
    except ProtocolError as exc:
        log.error("protocol error: %s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
