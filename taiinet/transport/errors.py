"""Errors of the transport layer (handshakes, dialing)."""

from __future__ import annotations

from taiinet.errors import LocalProtocolError, RemoteProtocolError, TaiiNetError


class HandshakeError(RemoteProtocolError):
    """The Noise handshake failed: a malformed, undecryptable or wrongly signed message."""


class PeerIdMismatch(HandshakeError):
    """The remote proved a peer id other than the one we dialed."""


class HandshakeTimeout(HandshakeError):
    """The peer did not complete the handshake in time."""


class DecryptionError(RemoteProtocolError):
    """A transport message failed authentication (altered, replayed or reordered)."""


class DialError(TaiiNetError):
    """A dial could not reach the peer (nobody listens, or the listener is full)."""


class LinkTimeout(RemoteProtocolError):
    """The peer missed a deadline of a secured link (see ``taiinet.transport.limits``)."""


class IdleTimeout(LinkTimeout):
    """The peer sent no frame for the link's idle deadline."""


class FrameTimeout(LinkTimeout):
    """The peer started a frame and did not complete it in time."""


class PartialFrameBudgetExceeded(LinkTimeout):
    """The peer's partial frame would take its listener past its budget of held bytes."""


class CertificateUntrusted(DialError):
    """A ``wss://`` server's TLS certificate failed verification (unknown CA, wrong host,
    expired).  Retrying does not help: give the CA that signed it (``ssl_context``,
    ``--tls-ca``)."""


class TlsConfigError(LocalProtocolError):
    """A TLS certificate, key or CA file could not be loaded."""


class InvalidSdp(RemoteProtocolError):
    """A WebRTC offer or answer is not an SDP this transport accepts (here, not
    in ``taiinet.transport.webrtc``, so catching it does not load aiortc)."""
