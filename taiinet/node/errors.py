"""Errors of the node layer."""

from __future__ import annotations

import trio

from taiinet.errors import LocalProtocolError, TaiiNetError


class NodeError(TaiiNetError):
    """The node could not do what was asked (e.g. reach any signaller or peer)."""


class NodeClosed(LocalProtocolError):
    """The node (or subscription) was used after it closed."""


class InvalidInput(LocalProtocolError):
    """Input given to the node or the CLI is not what it must be (e.g. not JSON)."""


class SubscriptionNotOpen(LocalProtocolError):
    """A subscription was read before its ``async with`` was entered.

    ``node.subscribe(query)`` only makes the subscription; entering it
    registers the query with the node, so reading earlier could never end.
    """


class SubscriptionInUse(LocalProtocolError):
    """A subscription was entered a second time, or cloned.

    A subscription has one owner: its ``async with`` closes it on exit, so a
    nested ``async with`` would close the outer one early.  For a second
    reader, subscribe again (each subscription gets every matching message).
    """


class SubscriptionClosed(NodeClosed, trio.ClosedResourceError):
    """This subscription was closed by its owner (``aclose``, ``close`` or the end of
    its ``async with``) and then used; a ``trio.ClosedResourceError`` too, as the
    ``trio.abc.ReceiveChannel`` contract asks."""


class LinkKindMismatch(NodeError):
    """A peer takes another kind of link (WebRTC vs WebSocket); the two cannot link."""
