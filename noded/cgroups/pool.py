"""A node's pool of step cgroups: a step costs limit rewrites and pid moves, not mkdir/rmdir.

Step cgroups are directories `steps/pool-<n>` (one per hierarchy on v1). `take` lends an
idle one to a step, or makes a new one when none is idle; `give_back` (from the step's
`release`, once the worker is out) returns it to the pool or removes it:

- Limits: `take` rewrites every limit (`Controls.apply`), so nothing of an earlier step's
  survives; if a pooled cgroup refuses them it is removed and a new one tried once. They are
  rewritten even when the last step had the same: skipping the writes then made a 200-step
  chain 3x slower (12 -> 40 ms a step on v1), most likely because writing the CFS quota is
  also what starts a step with a fresh CPU budget instead of its predecessor's throttling.
- Stats: `take` resets the counters the kernel lets us reset and records the others, so
  that `release` reports this step's figures only (`Controls.begin`; see each driver).
- Emptiness: a cgroup goes back to the pool only when `cgroup.procs` is empty in every
  hierarchy and `pids.current` (which also counts tasks exited but not reaped, against
  the next step's `pids.max`) is 0. Tasks still listed after `RELEASE_TIMEOUT_S` (a
  step's processes still exiting, or anything it left behind) are killed and the cgroup
  removed, with a warning: it is never lent to another step. Unreaped tasks get it
  removed at once (rmdir works with zombies in it), not waited for.
- Memory charges: neither v1 nor v2 moves a task's charged pages with it, so what the
  worker allocated in a step and kept (its heap grows in its first steps; page cache of
  files it read) stays charged to that cgroup and would count against the next step's
  limit. A cgroup is pooled only with at most `POOL_CHARGE_MAX` charged; above that the
  kernel is asked to reclaim (`Controls.reclaim`: v1 `memory.force_empty`, v2
  `memory.reclaim`), and if that does not bring it under, the cgroup is removed (the
  kernel keeps the charge on the removed cgroup until the pages are freed).
- Bound: a new cgroup is made only when none is idle, so the pool never holds more than
  were running at once; of those it keeps at most `POOL_MAX` idle and removes the rest.

Names: the step's name (`naming.slug` of `create`'s argument) is for logs, errors and
`repr`; `take` refuses a name a running step already has (`EEXIST`), as `mkdir` did when
the directory bore it.

The pool's lists are guarded by a lock, so `take` and `give_back` may come from several
threads (e.g. `asyncio.to_thread`); the file I/O happens outside it.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from noded.cgroups import fs
from noded.cgroups.errors import CgroupError
from noded.cgroups.fs import ControlDir
from noded.cgroups.limits import CgroupStats, StepLimits
from noded.cgroups.step import RELEASE_TIMEOUT_S, FileStepCgroup, Slot, for_step

log = logging.getLogger(__name__)

MiB = 1024 * 1024
POOL_MAX = 32
"""Most idle step cgroups a node keeps (each is one cgroup per hierarchy)."""
POOL_CHARGE_MAX = 4 * MiB
"""Most memory an idle step cgroup may still have charged to it and be lent to the next step.

That much of the next step's memory limit may be taken by pages an earlier step's worker
kept (and v1's `memory.max_usage_in_bytes`, reset to the current usage, starts there). A
real warm worker (v1, Linux 6.18) left 2 MiB charged after its first step and 6-7 MiB in
all after a step that allocated 38 MiB, barely more over further steps; 4 MiB is about 3%
of the headroom `policy.MEMORY_HEADROOM` gives the worker's own allocations, so such
cgroups are removed once and their successors pooled.
"""
PIDS_CURRENT = "pids.current"
MAX_NAME_TRIES = 100
"""How many `pool-<n>` names `take` tries when leftovers of an earlier run hold some."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Controls:
    """What a driver writes and reads in the control files of a step cgroup (by controller)."""

    apply: Callable[[Mapping[str, ControlDir], StepLimits], None]
    """Rewrite every limit; the cgroup may have held other limits before."""
    begin: Callable[[Mapping[str, ControlDir], bool], Callable[[], CgroupStats]]
    """As a step begins (the flag: the cgroup is fresh from mkdir), reset or record its
    counters; returns what reads the step's own stats at release."""
    charge: Callable[[Mapping[str, ControlDir]], int | None]
    """Bytes of memory charged to the cgroup (None if unknown)."""
    reclaim: Callable[[Mapping[str, ControlDir]], None]
    """Ask the kernel to reclaim what is charged to the (empty) cgroup, where it can."""


class StepPool:
    """Idle step cgroups of one node, and the names of the steps running in the others."""

    def __init__(self, *, layout: Callable[[str], Slot], controls: Controls) -> None:
        self._layout = layout
        self._controls = controls
        self._lock = threading.Lock()
        self._idle: list[Slot] = []
        self._running: set[str] = set()
        self._next = 0

    @property
    def idle(self) -> tuple[Slot, ...]:
        """The idle pooled cgroups, the next to be lent last."""
        with self._lock:
            return tuple(self._idle)

    def take(self, name: str, limits: StepLimits) -> FileStepCgroup:
        """Lend an idle cgroup (or a new one) to step `name`, with `limits` written."""
        self._reserve(name)
        try:
            reused = self._pop_idle()
            if reused is not None:
                try:
                    return self._start(name, reused, limits)
                except CgroupError as e:
                    log.info(
                        "pooled step cgroup %s refused the limits of step %s (%s); making a new one",
                        reused.name,
                        name,
                        e,
                    )
                    self._remove_quietly(reused)
            made = self._make()
            try:
                return self._start(name, made, limits)
            except CgroupError:
                self._remove_quietly(made)
                raise
        except CgroupError as e:
            self._unreserve(name)
            raise for_step(name, e) from e
        except BaseException:
            self._unreserve(name)
            raise

    def give_back(self, name: str, slot: Slot) -> None:
        """Step `name` is over and its process moved out: pool `slot` if it is fit, else remove it."""
        try:
            inside, unreaped = self._wait_until_empty(slot)
            if inside:
                log.warning(
                    "step cgroup %s of step %s still holds tasks %s after %.1f s: killing them and "
                    "removing the cgroup, which is not reused",
                    slot.name,
                    name,
                    inside,
                    RELEASE_TIMEOUT_S,
                )
                self._remove(slot, kill=True)
                return
            reason = self._unfit(slot, unreaped)
            if reason is None and self._park(slot):
                return
            if reason is None:
                log.debug("removing step cgroup %s: %d are idle already", slot.name, POOL_MAX)
            else:
                log.info("removing step cgroup %s of step %s instead of pooling it: %s", slot.name, name, reason)
            self._remove(slot, kill=False)
        finally:
            self._unreserve(name)

    def forget_idle(self) -> None:
        """Drop the idle cgroups from the pool (their directories are being removed)."""
        with self._lock:
            self._idle.clear()

    def drain(self) -> None:
        """Remove the idle cgroups; one that cannot be removed is logged and left."""
        with self._lock:
            idle, self._idle = self._idle, []
        for s in idle:
            self._remove_quietly(s)

    def _reserve(self, name: str) -> None:
        with self._lock:
            if name in self._running:
                raise CgroupError(
                    f"cannot create step cgroup {name}: EEXIST (a running step has that name)", errno=errno.EEXIST
                )
            self._running.add(name)

    def _unreserve(self, name: str) -> None:
        with self._lock:
            self._running.discard(name)

    def _pop_idle(self) -> Slot | None:
        with self._lock:
            return self._idle.pop() if self._idle else None

    def _park(self, slot: Slot) -> bool:
        with self._lock:
            if len(self._idle) >= POOL_MAX:
                return False
            self._idle.append(slot)
            return True

    def _start(self, name: str, slot: Slot, limits: StepLimits) -> FileStepCgroup:
        self._controls.apply(slot.paths, limits)
        read_stats = self._controls.begin(slot.paths, slot.fresh)
        slot.uses += 1
        return FileStepCgroup(name, slot=slot, read_stats=read_stats, give_back=self.give_back)

    def _make(self) -> Slot:
        """A new cgroup `pool-<n>`, skipping names that leftovers still hold."""
        for _ in range(MAX_NAME_TRIES):
            with self._lock:
                n, self._next = self._next, self._next + 1
            made = self._layout(f"pool-{n}")
            try:
                _make_dirs(made.dirs)
            except CgroupError as e:
                if e.errno != errno.EEXIST:
                    raise
                log.info("step cgroup %s exists already (a leftover?); trying the next name", e.path)
                continue
            return made
        raise CgroupError(f"no free name for a new step cgroup after {MAX_NAME_TRIES} tries (pool-<n> all exist)")

    def _wait_until_empty(self, slot: Slot) -> tuple[list[int], int]:
        """Wait up to `RELEASE_TIMEOUT_S` for `cgroup.procs` to empty: (pids still listed, tasks
        `pids.current` still counts once none are).

        Tasks that have exited but are not reaped are listed nowhere and counted in
        `pids.current` until their parent reaps them. They are not waited for: the parent may
        be this very process's event loop (asyncio's pidfd child watcher), which is blocked
        while this runs; and they do not keep the cgroup from being removed.
        """
        deadline = time.monotonic() + RELEASE_TIMEOUT_S
        while True:
            inside = sorted({pid for d, _ in slot.placements for pid in fs.read_pids(d.file("cgroup.procs"))})
            if not inside:
                return inside, _task_count(slot)
            if time.monotonic() >= deadline:
                return inside, 0
            time.sleep(fs.RETRY_INTERVAL_S)

    def _unfit(self, slot: Slot, unreaped: int) -> str | None:
        """Why an empty `slot` must not be lent again, or None."""
        if not all(d.is_dir() for d in slot.dirs):
            return "its directories are gone"
        if unreaped:
            return f"{unreaped} exited tasks not yet reaped still count against its pids.max"
        charge = self._controls.charge(slot.paths) or 0
        if charge <= POOL_CHARGE_MAX:
            return None
        try:
            self._controls.reclaim(slot.paths)
        except CgroupError as e:
            log.debug("reclaim in step cgroup %s failed: %s", slot.name, e)
        left = self._controls.charge(slot.paths) or 0
        if left <= POOL_CHARGE_MAX:
            return None
        return f"{left / MiB:.1f} MiB are still charged to it after reclaim (of {charge / MiB:.1f} MiB)"

    def _remove(self, slot: Slot, *, kill: bool) -> None:
        for d in slot.dirs:
            fs.remove(d, timeout_s=RELEASE_TIMEOUT_S, kill=kill)

    def _remove_quietly(self, slot: Slot) -> None:
        for d in reversed(slot.dirs):
            try:
                fs.remove(d)
            except CgroupError as e:
                log.warning("could not remove step cgroup %s: %s", d, e)


def _task_count(slot: Slot) -> int:
    """Tasks the pids controller still counts in `slot` (0 where it has no `pids.current`)."""
    pids = slot.paths.get("pids")
    return (fs.read_int(pids.file(PIDS_CURRENT)) or 0) if pids is not None else 0


def _make_dirs(dirs: tuple[Path, ...]) -> None:
    """`mkdir` each of `dirs`; if one fails, remove those made and raise."""
    made: list[Path] = []
    try:
        for d in dirs:
            fs.make_dir(d, exist_ok=False)
            made.append(d)
    except CgroupError:
        for d in reversed(made):
            try:
                fs.remove(d)
            except CgroupError as e:
                log.warning("could not remove %s after a failed mkdir: %s", d, e)
        raise
