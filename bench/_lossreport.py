"""Where a step's missing documents went (``bench/pubsub.py --loss-report``).

Opt-in, and it costs CPU of its own (a wrapper around every push and every
received ``Gossip``): leave it off for CPU figures.  It wraps, at class
level, the router's push (``Forwarding.push``), receipt (``TreeRouter._on_gossip``),
neighbour changes, the repair's ``_owe`` and the overlay's frame admission,
and logs per message id who pushed it to whom and what the receiver did with
it.  After each step it prints, for every (subscriber, document) that did
not arrive within the step: the pushes of that document towards the
subscriber and their fate there (over budget, duplicate, taken), the
neighbour changes and repair backlogs around its publication, and each
node's counters that moved (budget drops, evictions younger than the
retention, skipped re-pushes, subscription drops, refused frames).  At the
end of the run it says which of them arrived late and which never did.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from taiinet.link.runner import Runner
from taiinet.pubsub.tree.forwarding import Forwarding
from taiinet.pubsub.tree.repair import Repair
from taiinet.pubsub.tree.router import TreeRouter

_active: LossReport | None = None


def _counters(node: Any, subscription: Any) -> dict[str, int]:
    router = node.driver.router
    counters = {
        "over_budget": router.stats.over_budget,
        "rejected": sum(router.stats.rejected.values()),
        "evicted_young": router.retention.evicted_young,
        "seen_evicted_young": router.retention.seen_evicted_young,
        "repush_skipped": router.repair.skipped,
        "repaired": router.repair.repaired,
        "frames_refused": node.driver.frames_refused if hasattr(
            node.driver, "frames_refused") else 0,
        "overlay_frames_dropped": router.overlay.budget_stats.frames_dropped,
        "delivery_dropped": node.driver.dropped_documents,
        "route_changes": router.stats.route_changes,
    }
    if subscription is not None:
        counters["subscription_dropped"] = subscription.dropped
    for why, n in node.driver.links.ended.items():
        counters[f"ended {why}"] = n
    return counters


class LossReport:
    """Logs pushes and receipts by message id; reports the missing documents of a step."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}  # peer id -> node index
        self.nodes: list[Any] = []
        self.subscriptions: dict[int, Any] = {}
        #: (step, seq) -> message id; message id -> (step, seq, publish time)
        self.mids: dict[tuple[int, int], bytes] = {}
        self.published: dict[bytes, tuple[int, int, float]] = {}
        #: node index -> step -> seqs delivered (any time)
        self.got: dict[int, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
        self.pushes: dict[bytes, list[tuple[float, int, int]]] = defaultdict(list)
        self.receipts: dict[bytes, list[tuple[float, int, int, str]]] = defaultdict(list)
        #: (time, node, what)
        self.events: list[tuple[float, int, str]] = []
        self.before: dict[int, dict[str, int]] = {}
        #: (node index, step, seq) missing at the end of their step
        self.missing: list[tuple[int, int, int]] = []
        self.t0 = time.perf_counter()
        self.step_began = 0.0
        global _active
        _active = self
        _install()

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def add_node(self, node: Any) -> None:
        self.index[node.peer_id] = len(self.nodes)
        self.nodes.append(node)

    def node_of(self, router: Any) -> int:
        return self.index.get(router.peer_id, -1)

    def delivered(self, node_index: int, step: int, seq: int) -> None:
        self.got[node_index][step].add(seq)

    def start_step(self) -> None:
        self.before = {i: _counters(n, self.subscriptions.get(i))
                       for i, n in enumerate(self.nodes)}
        self.pushes.clear()
        self.receipts.clear()
        self.events = [e for e in self.events if e[0] > self.now() - 60]
        self.step_began = self.now()

    def report(self, step: int, count: int, say: Any) -> None:
        moved = []
        for i, node in enumerate(self.nodes):
            after = _counters(node, self.subscriptions.get(i))
            before = self.before.get(i, {})
            delta = {k: v - before.get(k, 0) for k, v in after.items()
                     if v - before.get(k, 0) and k not in ("repaired",)}
            if delta:
                moved.append(f"n{i}: " + ", ".join(f"{k} {v}" for k, v in sorted(delta.items())))
        repaired = sum(_counters(n, None)["repaired"] - self.before.get(i, {}).get("repaired", 0)
                       for i, n in enumerate(self.nodes))
        say(f"            loss report: repaired pushes {repaired}; counters moved: "
            + ("; ".join(moved) or "none"))
        during = [e for e in self.events
                  if e[0] >= self.step_began and not e[2].endswith(" 0 documents")]
        for t, node_i, what in during[:40]:
            say(f"            event at {t - self.step_began:.2f}s of the step, n{node_i}: {what}")
        missing = [(i, step, seq) for i in range(1, len(self.nodes))
                   for seq in range(count) if seq not in self.got[i][step]]
        self.missing += missing
        for i, _step, seq in missing[:40]:
            mid = self.mids.get((step, seq))
            if mid is None:
                say(f"            n{i} missed seq {seq}: not published")
                continue
            at = self.published[mid][2]
            say(f"            n{i} missed seq {seq} (published at {at:.3f}):")
            for t, src, dst in self.pushes.get(mid, []):
                if dst == i:
                    say(f"              pushed n{src}->n{i} at {t:.3f}")
            for t, node_i, src, outcome in self.receipts.get(mid, []):
                if node_i == i:
                    say(f"              received at n{i} from n{src} at {t:.3f}: {outcome}")
            hops = sorted(self.pushes.get(mid, []))
            say("              its pushes: " + " ".join(
                f"n{s}->n{d}@{t - at:+.2f}" for t, s, d in hops[:60]))
            near = [e for e in self.events
                    if abs(e[0] - at) < 15 and (e[1] == i or f"n{i} " in e[2] + " ")]
            for t, node_i, what in near[:30]:
                say(f"              event {t - at:+.2f}s n{node_i}: {what}")
        if len(missing) > 40:
            say(f"            ... {len(missing) - 40} more missing")

    def final(self, say: Any) -> None:
        if not self.missing:
            return
        late = [(i, s, q) for i, s, q in self.missing if q in self.got[i][s]]
        say(f"loss report: {len(self.missing)} missing at their step's end, {len(late)} of "
            f"them arrived later: " + " ".join(f"n{i}:{s}/{q}" for i, s, q in late[:40]))


def _install() -> None:
    push = Forwarding.push
    on_gossip = TreeRouter._on_gossip
    up = TreeRouter._neighbour_up
    down = TreeRouter._neighbour_down
    owe = Repair._owe
    admit = Runner.admit_frame
    settle = TreeRouter._settle
    routers: dict[int, int] = {}  # id(forwarding or repair) -> node index

    def find(obj: Any) -> int:
        report = _active
        if report is None:
            return -1
        key = id(obj)
        if key not in routers:
            for i, node in enumerate(report.nodes):
                router = node.driver.router
                routers[id(router.forwarding)] = i
                routers[id(router.repair)] = i
                routers[id(node.driver)] = i
        return routers.get(key, -1)

    def push_(self: Forwarding, mid: bytes, doc: Any, peer: Any, out: Any,
              message: Any = None) -> Any:
        report = _active
        if report is not None:
            report.pushes[mid].append((report.now(), find(self), report.index.get(peer, -1)))
        return push(self, mid, doc, peer, out, message)

    def on_gossip_(self: TreeRouter, peer: Any, message: Any, now: float) -> Any:
        report = _active
        if report is None:
            return on_gossip(self, peer, message, now)
        over, dup = self.stats.over_budget, self.stats.duplicates
        accepted = self.stats.accepted
        out = on_gossip(self, peer, message, now)
        outcome = ("over budget" if self.stats.over_budget != over else
                   "duplicate" if self.stats.duplicates != dup else
                   "taken" if self.stats.accepted != accepted else "rejected")
        report.receipts[message.message_id].append(
            (report.now(), report.node_of(self), report.index.get(peer, -1), outcome))
        return out

    def neighbour_event(router: TreeRouter, peer: Any, what: str) -> None:
        report = _active
        if report is not None:
            report.events.append((report.now(), report.node_of(router),
                                  f"neighbour {what} n{report.index.get(peer, -1)}"))

    def up_(self: TreeRouter, peer: Any) -> None:
        up(self, peer)
        neighbour_event(self, peer, "up")

    def down_(self: TreeRouter, peer: Any) -> None:
        down(self, peer)
        neighbour_event(self, peer, "down")

    def owe_(self: Repair, peer: Any, epoch: int, now: float) -> None:
        owe(self, peer, epoch, now)
        report = _active
        if report is not None:
            owed = self._owed.get(peer)
            report.events.append((report.now(), find(self),
                                  f"owes n{report.index.get(peer, -1)} "
                                  f"{0 if owed is None else len(owed.mids)} documents"))

    def admit_(self: Runner, peer: Any, size: int, items: int, now: float) -> bool:
        ok = admit(self, peer, size, items, now)
        report = _active
        if not ok and report is not None:
            report.events.append((report.now(), find(self),
                                  f"refused a frame of {items} items from "
                                  f"n{report.index.get(peer, -1)}"))
        return ok

    def settle_(self: TreeRouter, now: float, out: Any) -> None:
        parent = self.tree.parent
        settle(self, now, out)
        report = _active
        if report is not None and self.tree.parent != parent:
            report.events.append((report.now(), report.node_of(self),
                                  f"parent n{report.index.get(parent, -1)} -> "
                                  f"n{report.index.get(self.tree.parent, -1)}"))

    TreeRouter._settle = settle_  # type: ignore[method-assign]
    Forwarding.push = push_  # type: ignore[method-assign]
    TreeRouter._on_gossip = on_gossip_  # type: ignore[method-assign]
    TreeRouter._neighbour_up = up_  # type: ignore[method-assign]
    TreeRouter._neighbour_down = down_  # type: ignore[method-assign]
    Repair._owe = owe_  # type: ignore[method-assign]
    Runner.admit_frame = admit_  # type: ignore[method-assign]
