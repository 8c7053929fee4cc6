"""Every ``taiinet sim`` command shares ``--seed``, ``--json`` and its checks (``cli/sim_args``)."""

from __future__ import annotations

import pytest

from taiinet.cli import main
from taiinet.cli.sim import SIM_MODULES

SIMS = [name.removeprefix("sim_") for name in SIM_MODULES]


@pytest.mark.parametrize("sim", SIMS)
def test_every_simulation_takes_seed_and_json(sim: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["sim", sim, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "--seed" in text and "--json" in text


@pytest.mark.parametrize("sim", ["overlay", "pubsub", "stream"])
@pytest.mark.parametrize("latency", ["0", "-1"])
def test_an_impossible_latency_is_one_line_and_exit_2(
        sim: str, latency: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", sim, "--latency", latency]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "delay" in err
