"""bench/signalling.py: a relay row tears down in order, clients before signallers.

The bench used to cancel a nursery whose cancel scope enclosed the mesh: the
signallers stopped under their clients, whose shielded tasks went on
re-dialing the gone home ("no signaller reachable") until their close timed
out.  A row's teardown must log no warning.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path
from types import ModuleType

import pytest
import trio

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "signalling.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_signalling", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("limits", ["default", "unlimited"])
async def test_a_relay_row_closes_its_clients_before_its_signallers(
        limits: str, caplog: pytest.LogCaptureFixture) -> None:
    bench = load_bench()
    config = bench.SignallerConfig() if limits == "default" else bench.UNLIMITED
    with caplog.at_level(logging.INFO, "taiinet"), trio.fail_after(60):
        rate = await bench.relay_rate(config, True, offers=20)
    assert rate > 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == []
    # Each client left its home while the home still listened: no dial failed.
    assert not [r for r in caplog.records if "failed: DialError" in r.getMessage()]
