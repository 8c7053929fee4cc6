"""``taiinet sim signal``: the signalling cores relaying offers in the simulator."""

from __future__ import annotations

import json

import pytest

from taiinet.cli import main
from taiinet.errors import LocalProtocolError
from taiinet.sim import SignalSimConfig, simulate_signal


def test_a_crash_is_repaired_after_one_refresh() -> None:
    """20% of signallers crash: offers fail right after (peers homed there are
    cut off), and every live peer is reached again after one renewal period."""
    result = simulate_signal(SignalSimConfig(signallers=40, peers=30, offers=60, crash=0.2,
                                             seed=3))
    assert result.steady.success == 1.0
    assert result.after_crash is not None and result.after_crash.success < 1.0
    assert result.after_refresh is not None and result.after_refresh.success == 1.0
    assert result.steady.hops_p50 in (1.0, 2.0) and result.steady.answer_p99 < 2.0


def test_churned_peers_are_replaced_and_reached() -> None:
    result = simulate_signal(SignalSimConfig(signallers=30, peers=30, offers=60, churn=0.3,
                                             seed=4))
    assert result.after_churn is not None and result.after_churn.success == 1.0


def test_one_seed_gives_one_run() -> None:
    config = SignalSimConfig(signallers=20, peers=10, offers=20, crash=0.1, churn=0.1, seed=5)
    assert simulate_signal(config).as_json() == simulate_signal(config).as_json()


def test_bad_configs_are_local_errors() -> None:
    with pytest.raises(LocalProtocolError):
        SignalSimConfig(signallers=1)
    with pytest.raises(LocalProtocolError):
        SignalSimConfig(signallers=10, crash=1.0)
    with pytest.raises(LocalProtocolError):
        SignalSimConfig(signallers=2, homes=3)


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sim", "signal", "--signallers", "20", "--peers", "10", "--offers", "10",
                 "--crash", "0.1", "--seed", "2", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("signallers", "peers", "success", "hops_p50", "answer_p99", "steady",
                "after_crash", "after_refresh", "runtime_seconds"):
        assert key in out
    assert out["signallers"] == 20 and out["success"] == out["after_refresh"]["success"]


def test_cli_table_and_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "signal", "--signallers", "10", "--peers", "4", "--offers", "4"]) == 0
    assert "steady" in capsys.readouterr().out
    assert main(["sim", "signal", "--signallers", "1"]) == 2
    assert "signallers" in capsys.readouterr().err
