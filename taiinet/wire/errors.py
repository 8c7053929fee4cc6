"""Errors of the wire layer: bad bytes from a peer, bad keys, bad ids.

Every decoder of this layer raises one of these (never a protobuf or nacl
exception), so a driver can close the one link that sent them and go on.
"""

from __future__ import annotations

from taiinet.errors import LocalProtocolError, RemoteProtocolError, TaiiNetError


class FrameTooLarge(RemoteProtocolError):
    """A length prefix announced a frame larger than the configured maximum."""


class TruncatedFrame(RemoteProtocolError):
    """The input ended inside a length prefix or a frame."""


class MalformedFrame(RemoteProtocolError):
    """A length prefix or a frame's protobuf could not be decoded."""


class OversizedFrame(LocalProtocolError):
    """This program tried to send a frame larger than the link's maximum."""


class InvalidPeerId(RemoteProtocolError):
    """Text or bytes that are not the peer id of an Ed25519 key."""


class InvalidPublicKey(RemoteProtocolError):
    """A protobuf PublicKey that is not a canonical 32-byte Ed25519 key."""


class InvalidEnvelope(RemoteProtocolError):
    """A signed envelope that is malformed, oversized, wrongly signed or of another domain."""


class KeyFileError(TaiiNetError):
    """A key file that cannot be read, parsed or written."""
