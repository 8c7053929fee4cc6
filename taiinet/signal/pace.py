# taiinet: sans-io core
"""Token buckets pacing how fast a signaller reads one link (frames and bytes).

Past its bursts a link is read at ``rate`` frames/s and ``byte_rate``
bytes/s.  Every frame counts (``Ping``s and other layers' frames too).
Reading slower pushes back on the sender through the transport's bounded
buffers, so a flooding peer slows itself down and costs the signaller
nothing more than its queue; one that keeps the limit busy for
``flood_timeout`` without a break is dropped, so it does not hold that queue
for long either.
"""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.errors import RemoteProtocolError
from taiinet.signal.errors import SignalError


class ProtocolViolation(RemoteProtocolError, SignalError):
    """A link broke the signalling protocol; it is closed."""


@dataclass(slots=True)
class ReadPace:
    """The buckets of one link; ``delay`` is asked before each frame is handled."""

    rate: float
    burst: float
    byte_rate: float
    byte_burst: float
    refilled: float
    tokens: float = 0.0
    byte_tokens: float = 0.0
    throttled_since: float | None = None

    def __post_init__(self) -> None:
        self.tokens, self.byte_tokens = self.burst, self.byte_burst

    def reset(self, *, rate: float, burst: float, byte_rate: float, byte_burst: float) -> None:
        """New limits, buckets full (a link proven to be a signaller)."""
        self.rate, self.burst, self.byte_rate, self.byte_burst = rate, burst, byte_rate, byte_burst
        self.tokens, self.byte_tokens = burst, byte_burst

    def delay(self, size: int, now: float, flood_timeout: float) -> float:
        """Seconds to wait before handling a frame of ``size`` bytes; takes its tokens.

        ``ProtocolViolation`` when the link has been over its limit for
        ``flood_timeout`` without a break.
        """
        elapsed = max(0.0, now - self.refilled)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.byte_tokens = min(self.byte_burst, self.byte_tokens + elapsed * self.byte_rate)
        self.refilled = now
        wait = max(0.0, (1.0 - self.tokens) / self.rate,
                   (size - self.byte_tokens) / self.byte_rate)
        if wait <= 0:
            self.throttled_since = None
        elif self.throttled_since is None:
            self.throttled_since = now
        elif now - self.throttled_since > flood_timeout:
            raise ProtocolViolation(f"over its rate limit for {flood_timeout} s without a break")
        # The tokens are spent now; refilling from ``now`` pays the debt during the wait.
        self.tokens -= 1.0
        self.byte_tokens -= size
        return wait
