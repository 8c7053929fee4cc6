"""Errors of the history layer (stored documents, seeders)."""

from __future__ import annotations

from taiinet.errors import LocalProtocolError, RemoteProtocolError, TaiiNetError


class HistoryDecodeError(RemoteProtocolError):
    """A peer sent a history message that is malformed or exceeds a limit."""


class HistoryUsageError(LocalProtocolError):
    """The history API was called wrongly (a bad limit, a bad time)."""


class StoreError(TaiiNetError):
    """The seed database cannot be used: not a SQLite file, another program's
    database, a newer format, or an unreadable file."""
