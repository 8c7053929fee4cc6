"""Errors of the node layer."""

from __future__ import annotations

from taiinet.errors import LocalProtocolError, TaiiNetError


class NodeError(TaiiNetError):
    """The node could not do what was asked (e.g. reach any signaller or peer)."""


class NodeClosed(LocalProtocolError):
    """The node (or subscription) was used after it closed."""


class InvalidInput(LocalProtocolError):
    """Input given to the node or the CLI is not what it must be (e.g. not JSON)."""


class LinkKindMismatch(NodeError):
    """A peer takes another kind of link (WebRTC vs WebSocket); the two cannot link."""
