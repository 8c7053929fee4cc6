"""Errors of the signal layer (DHT and signalling)."""

from __future__ import annotations

from taiinet.errors import LocalProtocolError, RemoteProtocolError, TaiiNetError
from taiinet.wire.errors import InvalidPeerId

__all__ = ["InvalidPeerId", "MalformedSignalMessage", "NoSignallerAvailable", "PeerUnreachable",
           "RecordRejected", "SignalError", "SignalUsageError"]


class SignalError(TaiiNetError):
    """Root of the signal layer's errors."""


class MalformedSignalMessage(RemoteProtocolError, SignalError):
    """A signal or DHT message could not be decoded or broke a limit."""


class RecordRejected(RemoteProtocolError, SignalError):
    """A peer record is badly signed, names another peer, or is stale."""


class SignalUsageError(LocalProtocolError, SignalError):
    """The signal API was used wrongly (for example a send after close)."""


class PeerUnreachable(SignalError):
    """The mesh could not find or reach the target peer."""


class NoSignallerAvailable(SignalError):
    """None of the configured signallers could be reached."""


class InvalidSignallerUrl(SignalUsageError):
    """A signaller URL is not ``ws://HOST[:PORT]`` (or ``wss://``)."""
