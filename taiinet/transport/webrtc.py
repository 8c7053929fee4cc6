"""WebRTC transport: aiortc data channels upgraded with Noise XX.

Negotiation: the offerer creates one data channel labelled ``taiinet``,
ordered and reliable (no ``maxRetransmits``/``maxPacketLifeTime``), in-band
(DCEP, not pre-negotiated); the answerer takes the first such channel and
closes any other.  Offers and answers are complete SDP strings with every ICE
candidate in them (no trickle); this module checks them (size, line syntax,
one ``m=application`` data channel section, ICE credentials, DTLS fingerprint,
at least one candidate) before aiortc sees them, and any SDP aiortc refuses is
an ``InvalidSdp`` too.  After the channel opens, the offerer runs Noise XX as
initiator; a data channel message carries one length-prefixed Noise message,
or several whole ones joined when they queued up behind a busy aiortc (at most
65537 bytes, or the peer's SDP max-message-size if smaller).

``open_webrtc`` joins its trio run's asyncio loop (stepped in trio's own
thread, see ``_asyncio_loop``) and owns every peer connection made through
it: leaving its ``async with`` closes them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Literal

import trio

from taiinet.errors import ConnectionClosed, LocalProtocolError
from taiinet.transport._asyncio_bridge import (
    DATA_CHANNEL_LABEL,
    AiortcBridge,
    BridgeConnectError,
    BridgedDataChannel,
    BridgedPeer,
    BridgeSdpError,
    IceServerConfig,
    check_sdp_with_aiortc,
)
from taiinet.transport._idle import IdleWatch, watch_idle
from taiinet.transport.connection import Connection, MessageChannel
from taiinet.transport.errors import DialError, InvalidSdp
from taiinet.transport.limits import LISTENER_DEADLINES, LinkDeadlines
from taiinet.transport.secure import secure_channel
from taiinet.wire.framing import DEFAULT_MAX_FRAME_SIZE
from taiinet.wire.identity import Identity

logger = logging.getLogger(__name__)

__all__ = [
    "DATA_CHANNEL_LABEL",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_PEERS",
    "MAX_SDP_CANDIDATES",
    "MAX_SDP_LINES",
    "MAX_SDP_SIZE",
    "IceServer",
    "InvalidSdp",
    "PendingAnswer",
    "WebRTCEndpoint",
    "WebRTCOffer",
    "open_webrtc",
    "validate_sdp",
]

#: A STUN/TURN server for ICE (``urls`` like ``("stun:host:3478",)``).
IceServer = IceServerConfig

#: Largest SDP accepted (offers and answers come from the network).
MAX_SDP_SIZE = 16 * 1024
#: Most lines an SDP may have.
MAX_SDP_LINES = 256
#: Most ICE candidates an SDP may carry.
MAX_SDP_CANDIDATES = 64
#: Seconds from an offer/answer to an open data channel and a finished handshake.
DEFAULT_CONNECT_TIMEOUT = 30.0
#: Peer connections one endpoint holds at once (pending or connected).
DEFAULT_MAX_PEERS = 256

_SDP_LINE = re.compile(r"[a-z]=[^\x00-\x08\x0a-\x1f\x7f]*")
_REQUIRED_ATTRIBUTES = ("a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:", "a=setup:")


def validate_sdp(sdp: str, kind: Literal["offer", "answer"]) -> str:
    """Check an SDP from the network; return it or raise ``InvalidSdp``."""
    if not isinstance(sdp, str):
        raise InvalidSdp(f"the {kind} is not text")
    if len(sdp) > MAX_SDP_SIZE or len(sdp.encode("utf-8", "surrogatepass")) > MAX_SDP_SIZE:
        raise InvalidSdp(f"the {kind} is larger than {MAX_SDP_SIZE} bytes")
    lines = [line for line in sdp.replace("\r\n", "\n").split("\n") if line]
    if len(lines) > MAX_SDP_LINES:
        raise InvalidSdp(f"the {kind} has more than {MAX_SDP_LINES} lines")
    if not lines or lines[0] != "v=0":
        raise InvalidSdp(f"the {kind} does not start with v=0")
    for number, line in enumerate(lines, 1):
        if not _SDP_LINE.fullmatch(line):
            raise InvalidSdp(f"line {number} of the {kind} is not an SDP line")
    media = [line for line in lines if line.startswith("m=")]
    if len(media) != 1 or not media[0].startswith("m=application ") or (
        "webrtc-datachannel" not in media[0]
    ):
        raise InvalidSdp(f"the {kind} must have exactly one data channel (m=application) section")
    for attribute in _REQUIRED_ATTRIBUTES:
        if not any(line.startswith(attribute) for line in lines):
            raise InvalidSdp(f"the {kind} has no {attribute[:-1]} attribute")
    candidates = sum(1 for line in lines if line.startswith("a=candidate:"))
    if candidates == 0:
        raise InvalidSdp(f"the {kind} has no ICE candidate (trickle ICE is not supported)")
    if candidates > MAX_SDP_CANDIDATES:
        raise InvalidSdp(f"the {kind} has more than {MAX_SDP_CANDIDATES} ICE candidates")
    try:
        check_sdp_with_aiortc(sdp)
    except BridgeSdpError as exc:
        raise InvalidSdp(f"the {kind} cannot be parsed: {exc}") from None
    return sdp


class WebRTCOffer:
    """The offerer's half of one link: ``sdp`` goes to the peer, its answer comes back."""

    def __init__(self, endpoint: WebRTCEndpoint, peer: BridgedPeer, sdp: str) -> None:
        self._endpoint = endpoint
        self._peer = peer
        self.sdp = sdp
        self._used = False

    async def accept(self, answer_sdp: str, expected_peer_id: str | None = None) -> Connection:
        """Apply the peer's answer, wait for the data channel, run Noise XX (initiator).

        Raises ``InvalidSdp``, ``DialError`` (ICE/DTLS failed or timed out) or
        a ``HandshakeError``.
        """
        channel = await self.accept_raw(answer_sdp)
        return await self._endpoint._secure(
            channel, initiator=True, expected_peer_id=expected_peer_id
        )

    async def accept_raw(self, answer_sdp: str) -> MessageChannel:
        """As ``accept`` but without Noise: an unauthenticated channel (tests, benchmarks)."""
        if self._used:
            raise LocalProtocolError("this offer was already accepted")
        self._used = True
        try:
            validate_sdp(answer_sdp, "answer")
            try:
                await self._peer.accept_answer(answer_sdp)
            except BridgeSdpError as exc:
                raise InvalidSdp(f"the answer was refused: {exc}") from None
            return await self._endpoint._wait_open(self._peer)
        except BaseException:
            await self._peer.aclose()
            raise

    async def aclose(self) -> None:
        """Abandon the offer (or close the link made from it)."""
        await self._peer.aclose()


class PendingAnswer:
    """The answerer's half of one link, after its answer SDP was made."""

    def __init__(self, endpoint: WebRTCEndpoint, peer: BridgedPeer) -> None:
        self._endpoint = endpoint
        self._peer = peer
        self._used = False

    async def connected(self, expected_peer_id: str | None = None) -> Connection:
        """Wait for the offerer's data channel, run Noise XX (responder).

        Raises ``DialError`` (no channel in time, ICE/DTLS failed) or a
        ``HandshakeError``.
        """
        channel = await self.connected_raw()
        return await self._endpoint._secure(
            channel, initiator=False, expected_peer_id=expected_peer_id
        )

    async def connected_raw(self) -> MessageChannel:
        """As ``connected`` but without Noise: an unauthenticated channel (tests, benchmarks)."""
        if self._used:
            raise LocalProtocolError("this answer was already used")
        self._used = True
        try:
            return await self._endpoint._wait_open(self._peer)
        except BaseException:
            await self._peer.aclose()
            raise

    async def aclose(self) -> None:
        await self._peer.aclose()


class WebRTCEndpoint:
    """Makes WebRTC links for one identity; see ``open_webrtc``."""

    def __init__(self, identity: Identity, bridge: AiortcBridge, *,
                 connect_timeout: float, max_peers: int, max_frame_size: int,
                 deadlines: LinkDeadlines, idle_watch: IdleWatch | None,
                 link_deadlines: LinkDeadlines) -> None:
        self._max_frame_size = max_frame_size
        self._deadlines = deadlines
        # With a watchdog, a data channel's idle deadline is its (one look at
        # every link per tick), not a cancel scope around every read of every link.
        self._idle_watch = idle_watch
        self._link_deadlines = link_deadlines
        self._identity = identity
        self._bridge = bridge
        self._connect_timeout = connect_timeout
        self._max_peers = max_peers

    @property
    def peer_id(self) -> str:
        return self._identity.peer_id

    def _new_peer(self) -> BridgedPeer:
        if self._bridge.peer_count >= self._max_peers:
            raise DialError(f"this endpoint already holds {self._max_peers} peer connections")
        return self._bridge.new_peer()

    async def create_offer(self) -> WebRTCOffer:
        """Make an offer (SDP with all candidates) for a new link."""
        peer = self._new_peer()
        try:
            sdp = await peer.create_offer()
        except BaseException:
            await peer.aclose()
            raise
        return WebRTCOffer(self, peer, sdp)

    async def answer(self, offer_sdp: str) -> tuple[str, PendingAnswer]:
        """Answer a peer's offer: return the answer SDP and the pending link.

        Raises ``InvalidSdp`` for an offer this transport does not accept.
        """
        validate_sdp(offer_sdp, "offer")
        peer = self._new_peer()
        try:
            answer_sdp = await peer.create_answer(offer_sdp)
        except BridgeSdpError as exc:
            await peer.aclose()
            raise InvalidSdp(f"the offer was refused: {exc}") from None
        except BaseException:
            await peer.aclose()
            raise
        return answer_sdp, PendingAnswer(self, peer)

    async def _wait_open(self, peer: BridgedPeer) -> MessageChannel:
        started = trio.current_time()
        try:
            with trio.fail_after(self._connect_timeout):
                channel = await peer.wait_open()
                logger.debug("data channel open after %.3f s (ICE, DTLS, SCTP)",
                             trio.current_time() - started)
                return channel
        except trio.TooSlowError:
            raise DialError("the WebRTC data channel did not open in time") from None
        except BridgeConnectError as exc:
            raise DialError(f"the WebRTC link failed: {exc}") from None

    async def _secure(self, channel: MessageChannel, *, initiator: bool,
                      expected_peer_id: str | None) -> Connection:
        watch = None
        if isinstance(channel, BridgedDataChannel):
            channel.coalesce = True  # the secure channel reads a byte stream
            watch = self._idle_watch
        deadlines = self._deadlines if watch is None else self._link_deadlines
        started = trio.current_time()
        try:
            with trio.fail_after(self._connect_timeout):
                connection = await secure_channel(
                    channel, self._identity, initiator=initiator,
                    expected_peer_id=expected_peer_id, max_frame_size=self._max_frame_size,
                    handshake_timeout=self._deadlines.handshake, deadlines=deadlines,
                )
                logger.debug("Noise XX done after %.3f s", trio.current_time() - started)
        except trio.TooSlowError:
            raise DialError("the Noise handshake over WebRTC timed out") from None
        except ConnectionClosed as exc:
            raise DialError(f"the WebRTC link closed during the handshake: {exc}") from None
        if watch is not None and isinstance(channel, BridgedDataChannel):
            channel.on_closed = watch.forget
            if not channel.closed:
                watch.watch(channel)
        return connection


@asynccontextmanager
async def open_webrtc(
    identity: Identity,
    *,
    candidate_addresses: Sequence[str] | None = None,
    ice_servers: Sequence[IceServer] = (),
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    max_peers: int = DEFAULT_MAX_PEERS,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    deadlines: LinkDeadlines = LISTENER_DEADLINES,
) -> AsyncIterator[WebRTCEndpoint]:
    """Start a WebRTC endpoint for ``identity`` (aiortc on the process's shared asyncio thread).

    ``candidate_addresses``: the local addresses offered as ICE host
    candidates; ``None`` means what aioice finds, which leaves out
    127.0.0.1, so loopback-only setups pass ``["127.0.0.1"]``.
    ``ice_servers``: STUN/TURN servers; none by default (never a public one).
    ``deadlines``: of the Noise handshake and the secured links, on both sides
    (an idle deadline of 60 s by default: node links carry overlay ``Ping``s).
    The idle deadline is kept by one watchdog for all links of the endpoint
    (``taiinet.transport._idle``): a silent link is cut between ``idle`` and
    ``1.25 * idle`` seconds after its last message.
    """
    idle_watch, link_deadlines = watch_idle(deadlines)
    bridge = AiortcBridge(candidate_addresses=candidate_addresses, ice_servers=ice_servers)
    bridge.start()
    try:
        async with trio.open_nursery() as nursery:
            if idle_watch is not None:
                nursery.start_soon(idle_watch.run)
            yield WebRTCEndpoint(identity, bridge, connect_timeout=connect_timeout,
                                 max_peers=max_peers, max_frame_size=max_frame_size,
                                 deadlines=deadlines, idle_watch=idle_watch,
                                 link_deadlines=link_deadlines)
            nursery.cancel_scope.cancel()
    finally:
        await bridge.aclose()
