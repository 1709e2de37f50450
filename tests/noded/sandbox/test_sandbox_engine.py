"""Engine configuration, fingerprint and the epoch ticker."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import wasmtime

from noded.sandbox.engine import (
    EPOCH_TICK_S,
    EpochTicker,
    create_engine,
    deadline_ticks,
    engine_fingerprint,
    has_running_ticker,
    ticking,
    wasmtime_version,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("timeout_s", "ticks"), [(0.5, 50), (2.0, 200), (0.001, 1), (0.015, 2), (0.0, 1)], ids=str)
def test_deadline_ticks(timeout_s: float, ticks: int) -> None:
    assert EPOCH_TICK_S == 0.010
    assert deadline_ticks(timeout_s) == ticks


def test_fingerprint_names_version_and_flags() -> None:
    fingerprint = engine_fingerprint()
    assert fingerprint.startswith(f"wasmtime-{wasmtime_version()};")
    assert "epoch_interruption=1" in fingerprint
    assert "consume_fuel=0" in fingerprint
    assert engine_fingerprint() == fingerprint


def test_ticker_interrupts_a_loop_and_stops() -> None:
    engine = create_engine()
    assert not has_running_ticker(engine)
    module = wasmtime.Module(engine, '(module (func (export "spin") (loop (br 0))))')
    store = wasmtime.Store(engine)
    store.set_epoch_deadline(deadline_ticks(0.1))
    spin = wasmtime.Instance(store, module, []).exports(store)["spin"]
    assert isinstance(spin, wasmtime.Func)
    with EpochTicker(engine) as ticker:
        assert ticker.running and has_running_ticker(engine)
        with pytest.raises(RuntimeError, match="already has"):
            EpochTicker(engine).start()
        started = time.monotonic()
        with pytest.raises(wasmtime.Trap) as trap, ticking(engine):
            spin(store)
        assert trap.value.trap_code is wasmtime.TrapCode.INTERRUPT
        assert 0.09 <= time.monotonic() - started < 1.0
    assert not ticker.running and not has_running_ticker(engine)
    EpochTicker(engine).start().stop()  # a stopped ticker frees the engine for a new one


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def test_ticker_ticks_only_while_a_store_runs() -> None:
    engine = create_engine()
    with EpochTicker(engine) as ticker:
        _wait_for(lambda: ticker.parked, "the idle ticker to park")
        idle = ticker.ticks
        with ticking(engine):
            _wait_for(lambda: ticker.ticks >= idle + 2, "ticks while a store runs")
            assert not ticker.parked
        _wait_for(lambda: ticker.parked, "the ticker to park once no store runs")
        parked_at = ticker.ticks
        with ticking(engine):  # a second step wakes it again
            _wait_for(lambda: ticker.ticks > parked_at, "ticks for the second store")
    assert idle == 0  # nothing ran before the first block: it never ticked


def test_ticking_without_a_running_ticker_is_refused() -> None:
    engine = create_engine()
    with pytest.raises(RuntimeError, match="no running EpochTicker"), ticking(engine):
        pass
    ticker = EpochTicker(engine).start()
    ticker.stop()
    with pytest.raises(RuntimeError, match="no running EpochTicker"), ticking(engine):
        pass
