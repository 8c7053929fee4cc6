"""bench/pubsub.py: the JSON rows (shape and ratios), from a tiny real run and from
hand-made anchor results."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "pubsub.py"
ROW_KEYS = {"system", "links", "kind", "deliveries_per_s", "p50_ms", "p99_ms", "ratio_py",
            "ratio_js", "cpu_us_per_delivery"}


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_pubsub", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_a_tiny_run_prints_one_json_object_with_the_rows() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--nodes", "3", "--links", "websocket",
         "--seconds", "0.5", "--min-messages", "5", "--max-rate", "10", "--bisect", "0",
         "--drain", "2", "--settle", "0.2", "--anchors", "", "--repeat-max", "1", "--json"],
        capture_output=True, text=True, timeout=120, check=True, cwd=ROOT)
    report = json.loads(result.stdout)  # stdout is the JSON object alone
    rows = report["rows"]
    assert [(r["system"], r["links"], r["kind"]) for r in rows] == [
        ("TaiiNet", "websocket", "max"), ("TaiiNet", "websocket", "p50<50ms")]
    for row in rows:
        assert set(row) >= ROW_KEYS
        assert row["ratio_py"] is None and row["ratio_js"] is None  # no anchor ran
        if row["deliveries_per_s"] is not None:  # a loaded machine may lose the one step
            assert row["deliveries_per_s"] > 0 and row["cpu_us_per_delivery"] > 0
            assert 0 < row["p50_ms"] <= row["p99_ms"]
    top = rows[0]
    if top["deliveries_per_s"] is not None:  # the max rate measured once more
        assert [r["rate"] for r in top["repeats"]] == [top["rate"]]
        assert top["cpu_us_per_delivery_median"] is None or top[
            "cpu_us_per_delivery_median"] == top["repeats"][0]["cpu_us_per_delivery"]
    assert rows[1]["repeats"] == []
    assert len(report["load_average_before"]) == 3


def test_rows_carry_both_ratios_and_anchor_cpu_per_delivery() -> None:
    bench = load_bench()
    step = bench.Step(rate=100.0, published=300, expected=5700, delivered=5700,
                      deliveries_per_s=1900.0, p50_ms=20.0, p99_ms=80.0,
                      messages_per_delivery=0.7, overlay_messages_per_delivery=4.0,
                      cpu_us_per_delivery=500.0, published_per_s=100.0)
    anchors = [
        bench.AnchorRun(spec=bench.ANCHORS["py"], flags=["--rate", "20"], cpu_s=2.0, result={
            "deliveries_per_s": 190.0, "lat_p50_ms": 9000.0, "lat_p99_ms": 18000.0,
            "delivery_ratio": 0.5, "delivered": 2850}),
        bench.AnchorRun(spec=bench.ANCHORS["js"], flags=["--rate", "20"], cpu_s=None,
                        result=None, note="node not found"),
    ]
    rows = bench.build_rows({("websocket", "max"): step, ("webrtc", "max"): None}, anchors, 20.0)
    py, js, ws, rtc = rows
    assert all(set(row) >= ROW_KEYS for row in rows)
    assert (py["ratio_py"], py["ratio_js"], py["cpu_us_per_delivery"]) == (1.0, None, 702)
    assert js["deliveries_per_s"] is None and js["note"] == "node not found"
    assert (ws["ratio_py"], ws["ratio_js"], ws["cpu_us_per_delivery"]) == (10.0, None, 500)
    assert rtc["deliveries_per_s"] is None and rtc["ratio_py"] is None
    anchors[1] = bench.AnchorRun(spec=bench.ANCHORS["js"], flags=[], cpu_s=1.0, result={
        "deliveries_per_s": 380.0, "delivered": 5700})
    _, js, ws, _ = bench.build_rows({("websocket", "max"): step, ("webrtc", "max"): None},
                                    anchors, 20.0)
    assert (ws["ratio_js"], js["ratio_py"], js["cpu_us_per_delivery"]) == (5.0, 2.0, 175)


def test_a_schedule_is_rate_steal_and_links_to_cut() -> None:
    bench = load_bench()
    assert bench.parse_schedule("250@30, 62.5@0!2,10") == [
        (250.0, 30.0, 0), (62.5, 0.0, 2), (10.0, 0.0, 0)]


def test_a_tiny_scheduled_run_reports_each_step_and_why_links_went_down() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--nodes", "4", "--links", "websocket",
         "--seconds", "0.5", "--min-messages", "5", "--drain", "2", "--settle", "0.2",
         "--anchors", "", "--schedule", "10@20!1,10"],
        capture_output=True, text=True, timeout=120, check=True, cwd=ROOT)
    steps = [line for line in result.stdout.splitlines() if "rate" in line and "/s" in line
             and "delivered" in line]
    assert len(steps) == 2
    assert "(loop 20/100 ms busy) (1 links cut)" in steps[0]
    assert "cut 1" in result.stdout  # the cut link is reported with its reason


def _step(bench: ModuleType, cpu: float, rate: float = 100.0, delivered: int = 5700,
          per_s: float = 1900.0) -> Any:
    return bench.Step(rate=rate, published=300, expected=5700, delivered=delivered,
                      deliveries_per_s=per_s, p50_ms=20.0, p99_ms=80.0,
                      messages_per_delivery=0.7, overlay_messages_per_delivery=4.0,
                      cpu_us_per_delivery=cpu, published_per_s=100.0)


def test_repeats_of_the_max_rate_add_keys_and_medians_of_the_complete_ones() -> None:
    bench = load_bench()
    best = _step(bench, 150.0)
    repeats = [_step(bench, 170.0, per_s=1800.0), _step(bench, 140.0, per_s=2000.0),
               _step(bench, 900.0, delivered=5000, per_s=500.0),  # lost some: not in medians
               _step(bench, 160.0, per_s=1900.0)]
    rows = bench.build_rows({("websocket", "max"): best, ("websocket", "p50<50ms"): best},
                            [], 20.0, {("websocket", "max"): repeats})
    top, p50 = rows
    assert top["cpu_us_per_delivery"] == 150 and top["deliveries_per_s"] == 1900.0  # unchanged
    assert (top["cpu_us_per_delivery_median"], top["deliveries_per_s_median"]) == (160, 1900.0)
    assert [(r["cpu_us_per_delivery"], r["complete"]) for r in top["repeats"]] == [
        (170, True), (140, True), (900, False), (160, True)]
    assert p50["repeats"] == [] and p50["cpu_us_per_delivery_median"] is None
    assert bench.build_rows({("webrtc", "max"): None}, [], 20.0)[0]["repeats"] == []


def test_a_documents_padding_is_what_encoding_each_one_gave() -> None:
    bench = load_bench()
    from taiinet.pubsub.query import document_to_value
    for step, seq in [(1, 0), (1, 1), (3, 127), (3, 128), (200, 70_000), (1, 2), (1, 3)]:
        document = bench.make_document(step, seq, 256)
        base = len(document_to_value({**document, "pad": ""}))
        assert document["pad"] == "x" * (256 - base - 2)  # as before the cache
    assert len(bench._BASE_SIZES) == 6  # (1, 2) and (1, 3) share a shape: encoded once


def test_the_step_waiter_wakes_once_not_per_delivery(monkeypatch: Any) -> None:
    """The harness's own per-delivery work is the latency sample: no event per delivery."""
    import trio
    bench = load_bench()
    events: list[Any] = []
    real_event = trio.Event

    def counting_event() -> Any:
        events.append(real_event())
        return events[-1]

    class Message:
        def __init__(self, step: int) -> None:
            self.data = {"step": step, "t": 0.0}

    class Feed:
        def __init__(self, messages: list[Message]) -> None:
            self.messages = messages

        async def __aenter__(self) -> Feed:
            return self

        async def __aexit__(self, *_exc: object) -> None:
            return None

        async def receive(self) -> Message:
            await trio.lowlevel.checkpoint()
            if not self.messages:
                raise trio.EndOfChannel
            return self.messages.pop(0)

    async def main() -> None:
        receivers = bench.Receivers()
        receivers.new_step()
        monkeypatch.setattr(trio, "Event", counting_event)
        feed = Feed([Message(1)] * 100 + [Message(0)] * 5)  # stragglers do not count
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receivers.run, feed)
            with trio.fail_after(5):
                await receivers.wait_for(100)
        assert receivers.count == 100 and len(receivers.latencies) == 100
        assert len(events) == 1  # one wait, one wake

    trio.run(main)


def test_repeat_max_is_refused_with_a_schedule() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--schedule", "10", "--repeat-max", "2", "--anchors", ""],
        capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2 and "not with --schedule" in result.stderr


def test_datagram_stats_count_each_steps_sctp_packets_by_their_chunks() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--nodes", "3", "--links", "webrtc",
         "--seconds", "0.5", "--min-messages", "5", "--drain", "2", "--settle", "0.2",
         "--anchors", "", "--schedule", "10@0", "--datagram-stats"],
        capture_output=True, text=True, timeout=120, check=True, cwd=ROOT)
    lines = result.stdout.splitlines()
    step = next(i for i, line in enumerate(lines) if "rate" in line and "delivered" in line)
    stats = lines[step + 1]
    assert stats.strip().startswith("datagrams sent"), stats
    assert "SCTP DATA " in stats and "DATA chunks" in stats, stats  # two subscribers got them
