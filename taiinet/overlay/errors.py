"""Errors of the overlay layer."""

from __future__ import annotations

from taiinet.errors import LocalProtocolError, RemoteProtocolError


class OverlayDecodeError(RemoteProtocolError):
    """A peer sent an overlay message that is malformed or exceeds a limit."""


class OverlayUsageError(LocalProtocolError):
    """The overlay core was called wrongly (for example an empty message id)."""
