"""The one wasmtime engine configuration used for every agent, and its epoch ticker.

Wall-clock deadlines use epoch interruption: while a store runs (``ticking``), a daemon
thread increments the engine's epoch every ``EPOCH_TICK_S`` and each store gets a deadline of
``timeout / EPOCH_TICK_S`` ticks. Compiled modules are only valid for the exact engine configuration that compiled
them, so ``engine_fingerprint()`` names the version and every flag that affects code
generation; the compiled-module cache is keyed by it.
"""

from __future__ import annotations

import importlib.metadata
import math
import platform
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import wasmtime

EPOCH_TICK_S = 0.010
"""Interval between epoch increments; the resolution of step timeouts."""

MAX_WASM_STACK_BYTES = 1024 * 1024
"""Largest native stack a guest may use before it traps with a stack overflow."""

# Every flag set on the Config below, in one place, so the fingerprint cannot drift from it.
_ENGINE_FLAGS: dict[str, str] = {
    "epoch_interruption": "1",
    "consume_fuel": "0",
    "cranelift_opt_level": "speed",
    "max_wasm_stack": str(MAX_WASM_STACK_BYTES),
    "parallel_compilation": "0",
}

_ticking: weakref.WeakKeyDictionary[wasmtime.Engine, EpochTicker] = weakref.WeakKeyDictionary()
_ticking_lock = threading.Lock()


def wasmtime_version() -> str:
    """Version of the installed wasmtime package, e.g. ``"50.0.1"``."""
    return importlib.metadata.version("wasmtime")


def engine_config() -> wasmtime.Config:
    """A fresh ``wasmtime.Config`` with AgentFlow's settings (a Config is single-use)."""
    config = wasmtime.Config()
    config.epoch_interruption = True
    config.consume_fuel = False
    config.cranelift_opt_level = "speed"
    config.max_wasm_stack = MAX_WASM_STACK_BYTES
    # Workers compile one module at a time and several workers share the cores.
    config.parallel_compilation = False
    return config


def create_engine() -> wasmtime.Engine:
    """An engine with ``engine_config()``. Start an ``EpochTicker`` for it before running steps."""
    return wasmtime.Engine(engine_config())


def engine_fingerprint() -> str:
    """Identifies compiled code: wasmtime version, machine and every engine flag."""
    flags = ",".join(f"{key}={value}" for key, value in sorted(_ENGINE_FLAGS.items()))
    return f"wasmtime-{wasmtime_version()};{platform.machine()};{flags}"


def deadline_ticks(timeout_s: float) -> int:
    """Number of epoch ticks that covers ``timeout_s`` (at least one)."""
    return max(1, math.ceil(timeout_s / EPOCH_TICK_S))


class EpochTicker:
    """Increments an engine's epoch every ``interval_s`` on a daemon thread, while a step runs.

    One ticker per engine (normally one per process). ``start()`` and ``stop()`` are
    idempotent; the ticker is also a context manager. The thread holds only a weak
    reference to the engine and ends by itself once the engine is garbage collected.

    The thread ticks only inside ``ticking(engine)`` (a step runs) and is parked on a condition
    otherwise: an idle worker then costs no CPU. A deadline (``Store.set_epoch_deadline``) counts
    ticks from the epoch at the moment it is set, so ticks skipped while no store runs are never
    owed to one.
    """

    def __init__(self, engine: wasmtime.Engine, *, interval_s: float = EPOCH_TICK_S) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self._engine = weakref.ref(engine)
        self._interval_s = interval_s
        self._stopping = False
        self._changed = threading.Condition()
        self._busy = 0  # steps running inside ticking()
        self._parked = False
        self._thread: threading.Thread | None = None
        self.ticks = 0
        """Epoch increments so far."""

    def start(self) -> EpochTicker:
        engine = self._engine()
        if engine is None:
            raise RuntimeError("engine is gone")
        with _ticking_lock:
            if self._thread is not None:
                return self
            if engine in _ticking:
                raise RuntimeError("this engine already has an epoch ticker")
            self._thread = threading.Thread(target=self._run, name="epoch-ticker", daemon=True)
            _ticking[engine] = self
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with _ticking_lock:
            engine = self._engine()
            if engine is not None and _ticking.get(engine) is self:
                del _ticking[engine]

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    @property
    def parked(self) -> bool:
        """True while the thread waits for a step, with no timer armed."""
        with self._changed:
            return self._parked

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Tick while the block runs (blocks may nest and overlap across threads)."""
        with self._changed:
            self._busy += 1
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._busy -= 1

    def __enter__(self) -> EpochTicker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        with self._changed:
            while True:
                while not self._busy and not self._stopping:
                    self._parked = True
                    self._changed.wait()
                self._parked = False
                if self._stopping:
                    return
                # Schedule against the monotonic clock so ticks do not drift when the thread is late.
                next_tick = time.monotonic() + self._interval_s
                while self._busy and not self._stopping:
                    delay = next_tick - time.monotonic()
                    if delay > 0:
                        self._changed.wait(delay)
                        continue
                    engine = self._engine()
                    if engine is None:
                        return
                    engine.increment_epoch()
                    del engine
                    self.ticks += 1
                    next_tick += self._interval_s
                    now = time.monotonic()
                    if next_tick < now - 1.0:  # suspended for a long time: do not burst-catch-up
                        next_tick = now + self._interval_s


@contextmanager
def ticking(engine: wasmtime.Engine) -> Iterator[None]:
    """Run a store of `engine` inside this block: its epoch advances meanwhile. Raises
    RuntimeError when the engine has no running `EpochTicker` (step timeouts would not fire)."""
    with _ticking_lock:
        ticker = _ticking.get(engine)
    if ticker is None or not ticker.running:
        raise RuntimeError("the engine has no running EpochTicker; step timeouts would not fire")
    with ticker.busy():
        yield


def has_running_ticker(engine: wasmtime.Engine) -> bool:
    """True if an ``EpochTicker`` is currently ticking ``engine``."""
    with _ticking_lock:
        ticker = _ticking.get(engine)
    return ticker is not None and ticker.running
