# taiinet: sans-io core
"""Whom a relay tree node blames for a stall, and whom it bans.

Part of ``RelayTree`` (``taiinet.stream.tree``, *Free-riders* in its theory
of operation).  A child decides whether its stall is its parent's fault
(``stall_verdict``); a grandparent decides whether the stall reports it got
against one of its children add up to an eviction (``judge_report``); both
keep a bounded list of banned peers.
"""

from __future__ import annotations

import enum

from taiinet.stream.choice import Child
from taiinet.stream.config import TreeConfig
from taiinet.wire.peer_id import PeerId


class Verdict(enum.Enum):
    """What a stalled child does about its parent."""

    #: Not stalled, or not for long enough to say.
    WAIT = enum.auto()
    #: The parent holds chunks it does not relay: report it, leave it, ban it.
    BLAME = enum.auto()
    #: Stalled for long while the parent claims to be stalled too: report it
    #: to the grandparent (which can check) and stay.
    REPORT = enum.auto()


class StallJudge:
    """The bans of one tree node and the stall reports it holds about its children."""

    __slots__ = ("_banned", "_last_report", "_reports", "config")

    def __init__(self, config: TreeConfig) -> None:
        self.config = config
        self._banned: dict[PeerId, float] = {}  # peer -> banned until
        #: Child -> reporter -> time of its stall report.
        self._reports: dict[PeerId, dict[PeerId, float]] = {}
        self._last_report = float("-inf")

    def is_banned(self, peer: PeerId, now: float) -> bool:
        until = self._banned.get(peer)
        return until is not None and until > now

    def ban(self, peer: PeerId, now: float) -> None:
        banned = self._banned
        banned.pop(peer, None)
        banned[peer] = now + self.config.ban_duration
        while len(banned) > self.config.max_banned:
            del banned[next(iter(banned))]

    def forget_child(self, peer: PeerId) -> None:
        self._reports.pop(peer, None)

    def stall_verdict(self, *, seq: int, parent_seq: int, last_progress: float,
                      can_report: bool, now: float) -> Verdict:
        """Whether a child holding ``seq`` blames its parent (heartbeat ``parent_seq``)."""
        cfg = self.config
        stalled = now - last_progress
        if stalled <= cfg.stall_timeout:
            return Verdict.WAIT
        if parent_seq >= seq + cfg.blame_lag:
            return Verdict.BLAME
        if (stalled > cfg.upstream_grace and can_report
                and now - self._last_report > cfg.upstream_grace):
            self._last_report = now
            return Verdict.REPORT
        return Verdict.WAIT

    def judge_report(self, reporter: PeerId, accused: PeerId, child: Child,
                     report_seq: int, my_seq: int, now: float) -> bool:
        """Count a stall report from ``reporter`` against the child ``accused``;
        True when the reports make a quorum and the child is to be evicted."""
        cfg = self.config
        if reporter not in child.children or my_seq < report_seq + cfg.report_lag:
            return False  # not our grandchild, or we lack the chunks too
        window = now - cfg.report_window
        reports = self._reports.setdefault(accused, {})
        reports[reporter] = now
        for old in [r for r, at in reports.items() if at < window]:
            del reports[old]
        return len(reports) >= max(1, (len(child.children) + 1) // 2)
