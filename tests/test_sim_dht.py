"""The DHT simulator and ``taiinet sim dht`` on small networks."""

from __future__ import annotations

import json

import pytest

from taiinet.cli import main
from taiinet.errors import LocalProtocolError
from taiinet.sim import simulate_dht
from taiinet.sim.dht import DhtSimConfig, percentile, run_dht_simulation


def test_small_network_finds_every_target_and_is_reproducible() -> None:
    config = DhtSimConfig(signallers=150, crash=0.2, lookups=60, seed=4)
    first = run_dht_simulation(config)
    assert first.steady.success == 1.0
    assert first.after_refresh is not None and first.after_refresh.success == 1.0
    assert first.steady.hops_p99 <= 4
    assert run_dht_simulation(config) == first


@pytest.mark.parametrize("config", [
    DhtSimConfig(signallers=1), DhtSimConfig(signallers=10, crash=1.0)])
def test_a_bad_config_is_a_local_protocol_error(config: DhtSimConfig) -> None:
    with pytest.raises(LocalProtocolError):
        simulate_dht(config)


def test_percentile_nearest_rank() -> None:
    assert percentile([], 0.5) == 0.0
    assert percentile([3, 1, 2], 0.5) == 2.0
    assert percentile(list(range(1, 101)), 0.99) == 99.0


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sim", "dht", "--signallers", "60", "--lookups", "20", "--crash", "0.1",
                 "--seed", "2", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("signallers", "crash", "lookups", "success", "hops_p50", "hops_p99"):
        assert key in out
    assert out["signallers"] == 60 and 0.0 <= out["success"] <= 1.0


def test_cli_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "dht", "--signallers", "1"]) == 2
    assert "--signallers" in capsys.readouterr().err
