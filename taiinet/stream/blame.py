# taiinet: sans-io core
"""Whom a relay tree node blames for a stall, and whom it bans.

Part of ``RelayTree`` (``taiinet.stream.tree``, *Free-riders* in its theory
of operation).  A child decides whether its stall is its parent's fault
(``stall_verdict``); a grandparent decides whether the stall reports it got
against one of its children add up to an eviction (``judge_report``); both
keep a bounded list of banned peers.

Blame must land on the peer that withholds data, so both sides count only
what can be attributed:

- a child blames its parent only for chunks the parent got *while it was
  the parent*: its heartbeat ``seq`` must be ``blame_lag`` past both the
  child's own and the parent's ``seq`` when it adopted the child (a newcomer
  is owed no backfill, so a parent that is itself stalled upstream is not
  withholding anything), and have been so for ``stall_timeout`` while no
  chunk came (a parent that just got chunks back after a repair of its own
  is still sending them on);
- a child reports a parent that claims to be stalled too only after
  ``upstream_grace`` under the same parent and grandparent, attached (a stall
  that began under another parent, or while the parent was detached, is not
  this one's);
- a grandparent evicts only on evidence that it delivers: the accused's own
  ``Status`` shows it got what the reporter lacks and its ``seq`` rose within
  ``stall_timeout + tick_interval`` (it is fed and withholds), or a sibling's
  does (the grandparent feeds its children, so the accused hides its progress
  or cannot take the stream).  With no such evidence the stall may be the
  grandparent's own (a free-rider asked to judge its child, or an uplink that
  does not carry the stream): the report is ignored.
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

    __slots__ = ("_ahead_since", "_banned", "_base", "_last_report", "_reports", "_since",
                 "config")

    def __init__(self, config: TreeConfig) -> None:
        self.config = config
        self._banned: dict[PeerId, float] = {}  # peer -> banned until
        #: Child -> reporter -> time of its stall report.
        self._reports: dict[PeerId, dict[PeerId, float]] = {}
        self._last_report = float("-inf")
        #: The parent's ``seq`` in its first heartbeat (None: none yet).
        self._base: int | None = None
        #: Since when the parent's heartbeats show chunks we lack (None: they don't).
        self._ahead_since: float | None = None
        #: When the current parent and grandparent became ours (attached).
        self._since = float("-inf")

    # --- the child's side ---------------------------------------------------------

    def new_parent(self) -> None:
        """A new parent adopted us: what it held then it does not owe us."""
        self._base = None
        self._ahead_since = None

    def _ahead(self, seq: int, parent_seq: int) -> bool:
        base = self._base
        return base is not None and parent_seq >= max(seq, base) + self.config.blame_lag

    def parent_heard(self, seq: int, parent_seq: int, now: float) -> None:
        """A heartbeat from the parent: it holds chunks up to ``parent_seq``, we ``seq``."""
        if self._base is None:
            self._base = parent_seq
        if not self._ahead(seq, parent_seq):
            self._ahead_since = None
        elif self._ahead_since is None:
            self._ahead_since = now

    def path_changed(self, old: tuple[PeerId, ...], new: tuple[PeerId, ...],
                     now: float) -> None:
        """Restart the stall clock when the parent or grandparent changes or the
        parent attaches again: a stall that began before is not theirs."""
        if new and (not old or old[-2:] != new[-2:]):
            self._since = now

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
        if now - last_progress <= cfg.stall_timeout:
            return Verdict.WAIT
        ahead = self._ahead_since
        if not self._ahead(seq, parent_seq):
            self._ahead_since = ahead = None
        if ahead is not None and now - max(last_progress, ahead) > cfg.stall_timeout:
            return Verdict.BLAME
        stalled = now - max(last_progress, self._since)
        if (stalled > cfg.upstream_grace and can_report
                and now - self._last_report > cfg.upstream_grace):
            self._last_report = now
            return Verdict.REPORT
        return Verdict.WAIT

    # --- the grandparent's side -------------------------------------------------------

    def judge_report(self, reporter: PeerId, accused: PeerId, kids: dict[PeerId, Child],
                     report_seq: int, my_seq: int, now: float) -> bool:
        """Count a stall report from ``reporter`` against the child ``accused``;
        True when the reports make a quorum and the child is to be evicted."""
        cfg = self.config
        child = kids[accused]
        need = report_seq + cfg.report_lag
        if reporter not in child.children or my_seq < need:
            return False  # not our grandchild, or we lack the chunks too
        fed = now - (cfg.stall_timeout + cfg.tick_interval)
        if not any(info.seq >= need and info.advanced >= fed for info in kids.values()):
            return False  # no child shows we deliver: the stall may be ours
        window = now - cfg.report_window
        reports = self._reports.setdefault(accused, {})
        reports[reporter] = now
        for old in [r for r, at in reports.items() if at < window]:
            del reports[old]
        return len(reports) >= max(1, (len(child.children) + 1) // 2)
