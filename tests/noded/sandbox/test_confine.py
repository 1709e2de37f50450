"""The worker's walls, each checked from inside a fresh process that put them up.

The child applies the process layers as a worker does, then tries what they forbid and
reports what happened; the test asserts on the report. Landlock is checked in a step thread
with the rules a step gets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from agentflow.vocabulary import SandboxLayer
from noded.sandbox.confine import Confinement, landlock_abi

pytestmark = pytest.mark.component

REPO_ROOT = Path(__file__).resolve().parents[3]

CHILD = textwrap.dedent(
    """
    import ctypes, json, os, socket, sys, threading
    from noded.sandbox.confine import Confinement, apply_process_layers, network_interfaces

    mode, scratch, readable, secret, port = sys.argv[1:6]
    c = apply_process_layers(Confinement(mode))
    report = {"layers": sorted(c.layers), "problems": list(c.problems), "interfaces": network_interfaces()}

    def attempt(name, fn):
        try:
            fn()
            report[name] = "allowed"
        except OSError as exc:
            report[name] = exc.errno

    def connect():
        with socket.create_connection(("127.0.0.1", int(port)), timeout=2):
            pass

    attempt("connect", connect)
    attempt("inet_socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close())
    attempt("unix_socket", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close())
    attempt("exec", lambda: os.execv("/nonexistent/program", ["program"]))  # ENOENT unless refused

    def unshare():
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(0x40000000) != 0:
            raise OSError(ctypes.get_errno(), "unshare")

    attempt("unshare", unshare)

    restrict = c.step_restriction(writable=[scratch], readable=[readable])

    def step():
        if restrict is not None:
            restrict()
        attempt("step_read_secret", lambda: open(secret).read())
        attempt("step_read_allowed", lambda: open(os.path.join(readable, "data.txt")).read())
        attempt("step_write_allowed", lambda: open(os.path.join(readable, "new.txt"), "w").close())
        attempt("step_write_scratch", lambda: open(os.path.join(scratch, "out.txt"), "w").close())
        attempt("step_mkfifo_scratch", lambda: os.mkfifo(os.path.join(scratch, "fifo")))
        attempt("step_symlink_scratch", lambda: os.symlink(secret, os.path.join(scratch, "link")))
        attempt("step_import", lambda: __import__("fractions"))
        attempt("step_signal_parent", lambda: os.kill(os.getppid(), 0))

    t = threading.Thread(target=step)
    t.start()
    t.join()
    attempt("main_read_secret", lambda: open(secret).read())
    print(json.dumps(report))
    """
)


def confined_report(tmp_path: Path, mode: Confinement) -> dict[str, Any]:
    scratch, readable = tmp_path / "scratch", tmp_path / "shared"
    scratch.mkdir()
    readable.mkdir()
    (readable / "data.txt").write_text("shared data")
    secret = tmp_path / "secret.txt"
    secret.write_text("node secret")
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        port = listener.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-c", CHILD, mode.value, str(scratch), str(readable), str(secret), str(port)],
            capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
        )  # fmt: skip
    finally:
        listener.close()
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_a_confined_worker_has_no_network_no_exec_and_a_step_sees_only_its_paths(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test runs as root (the CI machine's user), to create the network namespace")
    assert landlock_abi() > 0, "this kernel has no Landlock; the test needs one that has (Linux 5.13+)"
    report = confined_report(tmp_path, Confinement.REQUIRED)
    assert report["layers"] == sorted(SandboxLayer) and report["problems"] == []
    assert report["interfaces"] == ["lo"]  # a namespace of its own, with nothing but loopback
    assert report["connect"] != "allowed"  # the host's listener is out of reach
    assert report["inet_socket"] == 1 and report["exec"] == 1 and report["unshare"] == 1  # EPERM
    assert report["unix_socket"] == "allowed"
    assert report["step_read_secret"] == 13  # EACCES: Landlock
    assert report["step_read_allowed"] == "allowed"
    assert report["step_write_allowed"] == 13  # read-only
    assert report["step_write_scratch"] == "allowed"
    assert report["step_mkfifo_scratch"] == 1  # mknod is filtered (Landlock would refuse it too)
    assert report["step_symlink_scratch"] == 13
    assert report["step_import"] == "allowed"  # the Python installation stays readable
    assert report["step_signal_parent"] == 1  # Landlock ABI 6 scopes signals
    assert report["main_read_secret"] == "allowed"  # the restriction is the step thread's


def test_off_applies_nothing(tmp_path: Path) -> None:
    report = confined_report(tmp_path, Confinement.OFF)
    assert report["layers"] == [] and report["inet_socket"] == "allowed" and report["step_read_secret"] == "allowed"
    assert report["exec"] == 2  # ENOENT: the call was made
