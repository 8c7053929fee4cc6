"""The one error hierarchy of TaiiNet.

Errors are split by blame, as in h11: a ``LocalProtocolError`` means this
program misused an API; a ``RemoteProtocolError`` means a peer sent something
it must not, and the link it came on is closed.  Every error a user can see is
a ``TaiiNetError``.
"""

from __future__ import annotations


class TaiiNetError(Exception):
    """Root of every error TaiiNet raises on purpose."""


class LocalProtocolError(TaiiNetError):
    """This program used an API wrongly (bad argument, wrong state)."""


class RemoteProtocolError(TaiiNetError):
    """A peer broke the protocol; the link it came on is closed."""


class ConnectionClosed(TaiiNetError):
    """The link is closed; nothing more can be sent or received on it."""
