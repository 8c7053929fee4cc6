"""The pubsub simulation and its CLI at a small size."""

from __future__ import annotations

import json

import pytest

from taiinet.cli import main
from taiinet.pubsub.config import PubsubConfig
from taiinet.sim.pubsub import PubsubSimConfig, simulate


def test_interest_routing_delivers_everything_with_fewer_payloads() -> None:
    base = dict(nodes=120, interest=0.05, messages=8, warmup=5, stabilize=10.0, seed=4)
    routed = simulate(PubsubSimConfig(**base)).summary()  # type: ignore[arg-type]
    flooded = simulate(PubsubSimConfig(**base, pubsub=PubsubConfig(routing=False))).summary()  # type: ignore[arg-type]
    for summary in (routed, flooded):
        assert summary["delivery_ratio"] == 1.0
        assert summary["false_deliveries"] == 0
        assert summary["duplicate_deliveries"] == 0
    assert routed["expected_deliveries"] == flooded["expected_deliveries"] > 0
    assert routed["payloads_per_publication"] < flooded["payloads_per_publication"] / 2
    assert flooded["adverts_total"] == 0 < routed["adverts_total"]


def test_same_seed_same_result() -> None:
    config = PubsubSimConfig(nodes=60, interest=0.2, messages=4, warmup=2, stabilize=5.0,
                             seed=9, wire_codec=True)
    assert simulate(config).summary() == simulate(config).summary()


def test_signed_documents_route_the_same() -> None:
    base = dict(nodes=40, interest=0.3, messages=3, warmup=2, stabilize=5.0, seed=2)
    plain = simulate(PubsubSimConfig(**base)).summary()  # type: ignore[arg-type]
    signed = simulate(PubsubSimConfig(**base, signed=True)).summary()  # type: ignore[arg-type]
    assert signed["delivery_ratio"] == plain["delivery_ratio"] == 1.0
    assert signed["rejected"] == 0


def test_cli_prints_both_modes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "pubsub", "--nodes", "40", "--interest", "0.1", "--messages", "3",
                 "--warmup", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"routing", "broadcast"}
    assert out["routing"]["false_deliveries"] == 0
    assert main(["sim", "pubsub", "--nodes", "1"]) == 2


def test_late_joiners_that_publish_at_once_are_delivered_like_the_others() -> None:
    summary = simulate(PubsubSimConfig(nodes=60, interest=0.2, messages=4, warmup=2,
                                       stabilize=5.0, seed=3, late=0.1)).summary()
    assert summary["delivery_ratio"] == 1.0
    assert summary["expected_deliveries"] > 0
    assert summary["false_deliveries"] == summary["duplicate_deliveries"] == 0
