"""Errors of the stream layer."""

from __future__ import annotations

from taiinet.errors import LocalProtocolError, RemoteProtocolError, TaiiNetError


class StreamDecodeError(RemoteProtocolError):
    """A peer sent a stream message or announcement that is malformed or exceeds a limit."""


class StreamNotFound(TaiiNetError):
    """No announcement of the stream to watch arrived in time."""


class StreamUsageError(LocalProtocolError):
    """The stream core was called or configured wrongly."""


class BadMedia(RemoteProtocolError):
    """A peer sent a seal the broadcaster did not sign, or a chunk its seal does not vouch for."""
