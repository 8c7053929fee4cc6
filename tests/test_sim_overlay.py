"""The overlay at 500 nodes in the simulator: the targets of the 10,000-node runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from taiinet.cli import main
from taiinet.overlay.config import PlumtreeConfig
from taiinet.overlay.core import OverlayConfig
from taiinet.sim.overlay import MessageResult, OverlaySimConfig, OverlaySimulation, simulate


def after(messages: list[MessageResult]) -> list[MessageResult]:
    return [m for m in messages if m.after_failure]


def test_stable_overlay_delivers_everything_along_a_tree() -> None:
    result = simulate(OverlaySimConfig(nodes=500, messages=8, seed=3))
    assert [m.reliability for m in result.messages] == [1.0] * 8
    assert result.messages[0].rmr > 1.0  # the first broadcast floods and builds the tree
    assert all(m.rmr <= 0.1 for m in result.messages[2:])
    # One-shot random sources share the default tree: about twice the flooding
    # depth (see docs); repeated origins are tested below.
    assert all(m.ldh <= 2 * result.messages[0].ldh + 2 for m in result.messages)
    assert result.component_at_end == 1.0


def test_repeated_origins_get_trees_of_their_own_as_short_as_flooding() -> None:
    result = simulate(OverlaySimConfig(nodes=500, messages=12, seed=3, sources=3))
    messages = result.messages
    flood_depth = messages[0].ldh  # the first broadcast floods
    assert [m.reliability for m in messages] == [1.0] * 12
    assert {m.origin_rank for m in messages} >= {1, 2, 3}
    for m in messages[2:]:
        if m.origin_rank == 2:
            assert m.rmr > 1.0  # an origin's second message floods and builds its tree
        else:
            assert m.rmr <= 0.1
        if m.origin_rank >= 3:  # along the origin's own tree
            assert m.ldh <= flood_depth + 1


def prefix(hops: int) -> OverlayConfig:
    return OverlayConfig(broadcast=PlumtreeConfig(flood_prefix=hops))


def test_flood_prefix_shortens_the_last_delivery_hop_of_random_sources() -> None:
    plain = simulate(OverlaySimConfig(nodes=500, messages=12, seed=8)).messages
    result = simulate(OverlaySimConfig(nodes=500, messages=12, seed=8, overlay=prefix(2)))
    messages = result.messages
    assert [m.reliability for m in messages] == [1.0] * 12
    assert {m.origin_rank for m in messages} == {1}  # one-shot sources: the shared tree
    # The shared tree still forms: one payload per node and a bit more (each
    # view change, a confirmation's too, costs the tree a few duplicates).
    assert all(m.rmr <= 0.12 for m in messages[1:])
    assert sum(m.rmr for m in messages[1:]) / len(messages[1:]) <= 0.08
    # Entering the tree at every node 2 hops from the origin: the farthest
    # node is nearer than along the shared tree alone (13 hops against 14 for
    # this seed; 11-14 against 13-15 over seeds 1-6), and the last delivery
    # comes at least one hop sooner per message on average (1.2 here, 1.1-3.1).
    assert max(m.ldh for m in messages) < max(m.ldh for m in plain)
    assert sum(m.ldh for m in messages[2:]) + 10 <= sum(m.ldh for m in plain[2:])


def test_flood_prefix_survives_crashes() -> None:
    half = simulate(OverlaySimConfig(nodes=500, messages=12, fail=0.5, seed=4,
                                     overlay=prefix(2)))
    assert all(m.reliability >= 0.99 for m in after(half.messages)[2:])
    most = simulate(OverlaySimConfig(nodes=500, messages=24, fail=0.8, seed=5,
                                     overlay=prefix(2)))
    assert all(m.reliability >= 0.99 for m in after(most.messages)[9:])
    assert half.component_at_end == most.component_at_end == 1.0


def test_half_of_the_nodes_crash() -> None:
    result = simulate(OverlaySimConfig(nodes=500, messages=12, fail=0.5, seed=4))
    assert result.live_nodes == 250
    assert all(m.reliability == 1.0 for m in result.messages if not m.after_failure)
    assert all(m.reliability >= 0.99 for m in after(result.messages)[2:])
    assert result.component_at_end == 1.0


def test_crashed_nodes_that_stay_silent_are_dropped_by_the_probe_timeout() -> None:
    """Half of the nodes hang: their links stay open (no send or probe to them
    ever fails) and nothing comes from them; unanswered probes find them."""
    sim = OverlaySimulation(OverlaySimConfig(nodes=500, messages=20, fail=0.5, seed=4))
    sim.network.on_unreachable = None
    result = sim.run()
    assert all(m.reliability >= 0.99 for m in after(result.messages)[4:])
    assert result.component_at_end == 1.0
    crashed = sim.network.crashed
    assert not [p for n in sim.live for p in sim.cores[n].active_view if p in crashed]
    assert all(sim.cores[n].active_view for n in sim.live)


def test_eighty_percent_of_the_nodes_crash() -> None:
    result = simulate(OverlaySimConfig(nodes=500, messages=24, fail=0.8, seed=5))
    assert result.live_nodes == 100
    assert all(m.reliability >= 0.99 for m in after(result.messages)[9:])
    assert result.component_at_end == 1.0


def test_flooding_baseline_costs_more_than_plumtree() -> None:
    base = OverlaySimConfig(nodes=200, messages=6, seed=6)
    flood = simulate(OverlaySimConfig(
        nodes=200, messages=6, seed=6,
        overlay=OverlayConfig(broadcast=PlumtreeConfig(flood=True))))
    tree = simulate(base)
    assert all(m.reliability == 1.0 for m in flood.messages + tree.messages)
    assert all(m.rmr > 1.0 for m in flood.messages)
    tree_cost = sum(m.payloads for m in tree.messages[2:])
    assert tree_cost * 2 < sum(m.payloads for m in flood.messages[2:])


def test_same_seed_same_run_and_codec_changes_nothing() -> None:
    config = OverlaySimConfig(nodes=100, messages=6, fail=0.5, seed=9)
    first = simulate(config)
    again = simulate(config)
    through_wire = simulate(OverlaySimConfig(nodes=100, messages=6, fail=0.5, seed=9,
                                             wire_codec=True))
    other = simulate(OverlaySimConfig(nodes=100, messages=6, fail=0.5, seed=10))
    assert first.messages == again.messages and first.summary() == again.summary()
    assert through_wire.messages == first.messages
    assert other.summary() != first.summary()


def test_cli_prints_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sim", "overlay", "--nodes", "120", "--messages", "4", "--fail", "0.5",
            "--seed", "2", "--json", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    report = json.loads(out)
    assert [m["index"] for m in report["messages"]] == [0, 1, 2, 3]
    assert [m["after_failure"] for m in report["messages"]] == [False, False, True, True]
    assert set(report["messages"][0]) == {"index", "after_failure", "reliability", "rmr", "ldh"}
    assert report["summary"]["live_nodes"] == 60
    assert main(argv) == 0
    assert capsys.readouterr().out == out  # byte for byte


def test_cli_rejects_bad_arguments_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "overlay", "--fail", "1.5"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["sim", "overlay", "--flood-prefix", "17"]) == 2
    assert "flood prefix" in capsys.readouterr().err


def test_cli_writes_a_plot(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    from pathlib import Path

    path = Path(str(tmp_path)) / "overlay.png"
    assert main(["sim", "overlay", "--nodes", "60", "--messages", "4", "--no-progress",
                 "--plot", str(path)]) == 0
    assert path.read_bytes().startswith(b"\x89PNG")
    assert "reliability" in capsys.readouterr().out


def test_same_seed_same_run_in_every_process() -> None:
    # String hashing differs between processes: no state may be iterated in hash order.
    argv = [sys.executable, "-m", "taiinet.cli", "sim", "overlay", "--nodes", "150",
            "--messages", "6", "--fail", "0.5", "--seed", "3", "--flood-prefix", "2",
            "--json", "--no-progress"]
    outs = {subprocess.run(argv, capture_output=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout
            for seed in ("1", "2")}
    assert len(outs) == 1
