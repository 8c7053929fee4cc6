"""Harnesses for testing code built on TaiiNet (they use trio.testing).

``taiinet.testing.transport`` is the conformance suite every transport runs
(memory, WebSocket and WebRTC links pass it; a new ``MessageChannel`` or
``Connection`` should too); its names are re-exported here, with
``clock_waits_for_threads`` (``taiinet.testing.clock``: trio's MockClock for
in-process runs that use worker threads) and the in-process mesh of
signallers and nodes over memory links (``taiinet.testing.mesh``).
"""

from taiinet.testing.clock import clock_waits_for_threads
from taiinet.testing.mesh import numbered_identity, start_cm, start_nodes, start_signallers
from taiinet.testing.transport import (
    CONNECTION_CHECKS,
    DEFAULT_BACKPRESSURE_BYTES,
    ChannelPairFactory,
    ConformanceFailure,
    ConnectionPairFactory,
    Suite,
    check_backpressure,
    check_close_from_dialer,
    check_close_from_listener,
    check_close_wakes_blocked_receive,
    check_concurrent_senders,
    check_connection_pair,
    check_large_frames,
    check_message_channel_pair,
    check_ordering,
    check_oversized_frame_refused_by_sender,
    check_oversized_frame_rejected_by_receiver,
    check_peer_ids,
)

__all__ = [
    "CONNECTION_CHECKS",
    "DEFAULT_BACKPRESSURE_BYTES",
    "ChannelPairFactory",
    "ConformanceFailure",
    "ConnectionPairFactory",
    "Suite",
    "check_backpressure",
    "check_close_from_dialer",
    "check_close_from_listener",
    "check_close_wakes_blocked_receive",
    "check_concurrent_senders",
    "check_connection_pair",
    "check_large_frames",
    "check_message_channel_pair",
    "check_ordering",
    "check_oversized_frame_refused_by_sender",
    "check_oversized_frame_rejected_by_receiver",
    "check_peer_ids",
    "clock_waits_for_threads",
    "numbered_identity",
    "start_cm",
    "start_nodes",
    "start_signallers",
]
