"""The worker's own walls: what a wasmtime escape would still find around it.

Three layers, each applied where the kernel allows and reported (`SandboxLayer`):

- **netns** — at start-up the worker moves into a network namespace of its own, which has
  only a loopback interface that is down: no route anywhere. noded does every fetch
  (`noded.egress`); the worker talks to noded over inherited pipes, which a namespace does
  not touch. As root this is `unshare(CLONE_NEWNET)`; unprivileged, a user namespace first.
- **seccomp** — then a filter on every thread of the process (TSYNC) refuses with EPERM the
  system calls a wasmtime worker never makes: starting programs, tracing or reading other
  processes, namespaces and mounts, kernel modules, keyrings, BPF, perf, io_uring (which
  would bypass the filter), changing identity, and sockets other than AF_UNIX. `clone3` gets
  ENOSYS, so threads fall back to `clone`, whose namespace flags are refused. It is a deny
  list: CPython and wasmtime make too wide a set of calls for an allow list to stay right
  across versions.
- **landlock** — each step runs in a thread of its own that, once the module is compiled
  and its directories are open, restricts itself (Landlock is per thread) to reading the
  Python installation and its preopened directories (`/scratch` read-write, the manifest's
  paths as declared); it handles every file access right the kernel knows, so creating
  devices, sockets, FIFOs or symlinks, renaming across directories and truncating outside
  those trees are refused; with Landlock ABI 4 no TCP bind or connect, with ABI 6 no signals
  to processes outside the step and no abstract UNIX sockets. Not even the compiled-module
  cache is reachable from a step's thread, so an escaped guest cannot plant code for the next.

`apply_process_layers` runs once, first thing in a worker, while it has one thread;
`step_landlock` returns the callable the executor runs in the step's thread. Both report what
took effect; with `required`, a layer that cannot be applied is an error instead.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import enum
import errno
import functools
import json
import logging
import os
import socket
import struct
import sys
import sysconfig
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from agentflow.vocabulary import SandboxLayer

log = logging.getLogger(__name__)


class Confinement(enum.StrEnum):
    """How hard the worker tries: `auto` applies what the host allows, `required` fails
    without all three layers, `off` applies none (a debugging aid)."""

    AUTO = "auto"
    REQUIRED = "required"
    OFF = "off"


PROBE_TIMEOUT_S = 30.0


class ConfinementError(Exception):
    """A layer that `required` asked for could not be applied (the message says why)."""


# --- netns -------------------------------------------------------------------------------

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_CLONE_NEWNS = 0x00020000
_NAMESPACE_FLAGS = 0x7E020000  # every CLONE_NEW* flag (NS, CGROUP, UTS, IPC, USER, PID, NET)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _unshare(flags: int) -> int:
    """0, or the errno of a failed unshare(2)."""
    if _libc.unshare(ctypes.c_int(flags)) == 0:
        return 0
    return ctypes.get_errno()


def enter_empty_netns() -> str | None:
    """Moves the calling (single-threaded) process into a new network namespace; None on
    success, else why not."""
    err = _unshare(_CLONE_NEWNET)
    if err == 0:
        return None
    if err == errno.EPERM:
        uid, gid = os.getuid(), os.getgid()
        err = _unshare(_CLONE_NEWUSER | _CLONE_NEWNET)
        if err == 0:
            _map_ids(uid, gid)
            return None
    return f"unshare(CLONE_NEWNET): {os.strerror(err)}"


def _map_ids(uid: int, gid: int) -> None:
    """Inside a new user namespace: be the same uid/gid as outside (else files look foreign)."""
    try:
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")
    except OSError as exc:
        log.warning("cannot map ids in the worker's user namespace: %s", exc)


def network_interfaces() -> list[str]:
    """Names of the network interfaces the calling process can see (from /proc, as netlink
    sockets are refused once the filter is on)."""
    with open("/proc/self/net/dev") as f:
        return [line.split(":", 1)[0].strip() for line in f.readlines()[2:]]


# --- seccomp -----------------------------------------------------------------------------

DENIED_SYSCALLS = (
    # other programs and processes
    "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
    "kcmp",
    # namespaces, mounts, the root
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    # the kernel itself
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
    "swapon", "swapoff", "acct", "bpf", "perf_event_open", "userfaultfd", "syslog", "iopl",
    "ioperm", "quotactl", "lookup_dcookie", "open_by_handle_at", "name_to_handle_at",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "vhangup", "personality",
    # keyrings
    "keyctl", "add_key", "request_key",
    # io_uring runs system calls the filter never sees
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    # identity
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid",
    "setfsgid", "setgroups", "capset",
    # device nodes
    "mknod", "mknodat",
)  # fmt: skip


def apply_seccomp() -> str | None:
    """Loads the deny-list filter on every thread; None on success, else why not."""
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError) as exc:  # the package, or the system's libseccomp, is missing
        return f"seccomp: {exc}"
    try:
        f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        f.set_attr(seccomp.Attr.CTL_TSYNC, 1)
        f.set_attr(seccomp.Attr.CTL_NNP, 1)
        deny = seccomp.ERRNO(errno.EPERM)
        for name in DENIED_SYSCALLS:
            try:
                f.add_rule(deny, name)
            except (ValueError, OSError, RuntimeError):
                continue  # not a system call on this architecture
        f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")  # glibc falls back to clone
        f.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, _NAMESPACE_FLAGS, _NAMESPACE_FLAGS))
        for flag in (_CLONE_NEWUSER, _CLONE_NEWNET, _CLONE_NEWNS):
            f.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
        f.add_rule(deny, "socket", seccomp.Arg(0, seccomp.NE, socket.AF_UNIX))
        f.load()
    except (OSError, RuntimeError, ValueError) as exc:
        return f"seccomp: {exc}"
    return None


# --- Landlock ----------------------------------------------------------------------------

_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

_FS_EXECUTE = 1 << 0
_FS_WRITE_FILE = 1 << 1
_FS_READ_FILE = 1 << 2
_FS_READ_DIR = 1 << 3
_FS_REMOVE_DIR = 1 << 4
_FS_REMOVE_FILE = 1 << 5
_FS_MAKE_DIR = 1 << 7
_FS_MAKE_REG = 1 << 8
_FS_TRUNCATE = 1 << 14
_FS_ALL_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1

READ_ONLY = _FS_READ_FILE | _FS_READ_DIR
READ_WRITE = READ_ONLY | _FS_WRITE_FILE | _FS_REMOVE_DIR | _FS_REMOVE_FILE | _FS_MAKE_DIR | _FS_MAKE_REG | _FS_TRUNCATE
"""What a rw directory allows beneath it: files and directories, not devices, FIFOs, sockets
or symlinks; renaming in or out (REFER) is not granted either."""


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when it has none (or it is disabled)."""
    version = _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), _LANDLOCK_CREATE_RULESET_VERSION)
    return max(int(version), 0)


@dataclass(frozen=True, slots=True)
class PathRule:
    path: str
    writable: bool = False


@functools.cache
def python_paths() -> tuple[str, ...]:
    """Where this interpreter reads code from: the standard library, site-packages and the
    `noded` and `agentflow` packages — not whatever else is on `sys.path` (such as the
    working directory, which may hold a data directory). Worked out once per process: it
    costs a third of a millisecond, on every step otherwise."""
    paths = {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    noded_package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths |= {noded_package, os.path.join(os.path.dirname(noded_package), "agentflow")}
    return tuple(sorted(p for p in paths if p and os.path.isdir(p)))


def landlock_restrict_thread(rules: Iterable[PathRule], abi: int) -> None:
    """Restricts the calling thread (and threads it starts) to `rules`; raises OSError."""
    fs_all = _FS_ALL_BY_ABI.get(abi, _FS_ALL_BY_ABI[5])
    attr = struct.pack("Q", fs_all)
    if abi >= 4:
        attr += struct.pack("Q", _NET_BIND_TCP | _NET_CONNECT_TCP)
    if abi >= 6:
        attr += struct.pack("Q", _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL)
    buf = ctypes.create_string_buffer(attr, len(attr))
    ruleset = _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, buf, ctypes.c_size_t(len(attr)), 0)
    if ruleset < 0:
        raise _os_error("landlock_create_ruleset")
    try:
        for rule in rules:
            access = (READ_WRITE if rule.writable else READ_ONLY) & fs_all
            fd = os.open(rule.path, os.O_PATH | os.O_CLOEXEC)
            try:
                if not os.path.isdir(rule.path):
                    access &= _FS_READ_FILE | _FS_WRITE_FILE | _FS_TRUNCATE | _FS_EXECUTE
                beneath = ctypes.create_string_buffer(struct.pack("=Qi", access, fd), 12)
                if _libc.syscall(
                    _SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset), _LANDLOCK_RULE_PATH_BENEATH, beneath, 0
                ):
                    raise _os_error(f"landlock_add_rule {rule.path}")
            finally:
                os.close(fd)
        if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
            raise _os_error("prctl(PR_SET_NO_NEW_PRIVS)")
        if _libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), 0):
            raise _os_error("landlock_restrict_self")
    finally:
        os.close(ruleset)


def _os_error(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")


# --- the worker's view -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerConfinement:
    """What a worker applied at start-up, and how it restricts each step's thread."""

    mode: Confinement
    layers: frozenset[SandboxLayer]
    problems: tuple[str, ...]
    landlock: int  # the ABI used for steps; 0 when steps are not Landlocked

    def step_restriction(self, writable: Sequence[str], readable: Sequence[str]) -> Callable[[], None] | None:
        """The callable the executor runs in a step's thread once its directories are open."""
        if not self.landlock:
            return None
        rules = [PathRule(p) for p in python_paths()]
        rules += [PathRule(p) for p in readable] + [PathRule(p, writable=True) for p in writable]
        abi = self.landlock

        def restrict() -> None:
            landlock_restrict_thread(rules, abi)

        return restrict


def apply_process_layers(mode: Confinement) -> WorkerConfinement:
    """Network namespace and seccomp for this process, and whether steps get Landlock.
    Call while the process has a single thread. Raises ConfinementError under `required`."""
    if mode is Confinement.OFF:
        return WorkerConfinement(mode, frozenset(), (), 0)
    layers: set[SandboxLayer] = set()
    problems: list[str] = []
    abi = landlock_abi()
    if abi:
        layers.add(SandboxLayer.LANDLOCK)
    else:
        problems.append("landlock: the kernel has no Landlock (or it is not enabled)")
    netns = enter_empty_netns()
    if netns is None:
        layers.add(SandboxLayer.NETNS)
    else:
        problems.append(f"netns: {netns}")
    if mode is Confinement.REQUIRED and problems:
        raise ConfinementError("; ".join(problems))
    seccomp_problem = apply_seccomp()  # last: it refuses unshare from here on
    if seccomp_problem is None:
        layers.add(SandboxLayer.SECCOMP)
    else:
        problems.append(seccomp_problem)
        if mode is Confinement.REQUIRED:
            raise ConfinementError(seccomp_problem)
    return WorkerConfinement(mode, frozenset(layers), tuple(problems), abi)


async def probe(mode: Confinement, python: str = sys.executable) -> WorkerConfinement:
    """What a worker started now would apply, found by a fresh process applying it (the
    layers change the process that applies them, so noded cannot try them on itself).
    Raises ConfinementError under `required` when a layer is not possible."""
    proc = await asyncio.create_subprocess_exec(
        python, "-m", "noded.sandbox.confine", mode.value,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=PROBE_TIMEOUT_S)
    try:
        report = json.loads(out)
    except ValueError:
        raise ConfinementError(
            f"the probe exited with {proc.returncode}: {err.decode(errors='replace')[-500:]}"
        ) from None
    if "error" in report:
        raise ConfinementError(str(report["error"]))
    return WorkerConfinement(
        mode,
        frozenset(SandboxLayer(layer) for layer in report["layers"]),
        tuple(report["problems"]),
        int(report["landlock"]),
    )


def _probe_main(argv: Sequence[str]) -> int:
    try:
        walls = apply_process_layers(Confinement(argv[0]))
    except ConfinementError as exc:
        print(json.dumps({"error": str(exc)}))
        return 3
    print(json.dumps({"layers": sorted(walls.layers), "problems": list(walls.problems), "landlock": walls.landlock}))
    return 0


if __name__ == "__main__":
    sys.exit(_probe_main(sys.argv[1:]))
