# taiinet: sans-io core
"""Protocols by id: which codec reads an item's body, and who handles the message.

The link layer knows one protocol of its own (``LINK_PROTOCOL``, Ping/Pong);
every other protocol a node runs is registered here with its codec (the only
place its wire types are touched) and the handler of its decoded messages,
so a new protocol adds a registration, never a field of the link frame.

An item of a protocol id nobody registered is skipped and counted (a peer
may run protocols this node does not, as a node without pubsub; docs/
protocol.md section 4.1); a body its codec rejects raises the codec's
``RemoteProtocolError`` and the link layer drops the peer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from taiinet.errors import LocalProtocolError
from taiinet.wire.framing import MAX_PROTOCOL_ID, encode_item
from taiinet.wire.keepalive import LINK_PROTOCOL
from taiinet.wire.peer_id import PeerId

#: ``handle(peer, message, now)``: a decoded message of the protocol.
Handle = Callable[[PeerId, Any, float], None]
#: ``admit(peer, now)``: whether an item of the protocol from ``peer`` is within
#: its budget, asked before the body is decoded; a refused item is skipped.
Admit = Callable[[PeerId, float], bool]
#: ``link_down(peer, now)``: the link to ``peer`` is gone (a protocol that keeps
#: per-peer state beside the core, such as a stream relay, forgets it).
LinkDown = Callable[[PeerId, float], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolCodec:
    """A protocol's id and the codec of its messages (bodies of its items).

    ``message_types``: the domain types ``encode`` takes, so that a core's
    ``Send(peer, message)`` finds its protocol by the message's type.
    ``decode`` raises a ``RemoteProtocolError`` for a bad body.
    ``encode_item``, if given, writes a message's whole link item, byte for
    byte ``encode_item(protocol_id, encode(message))``, faster (a codec whose
    messages are many writes its frequent ones straight into the item).
    """

    protocol_id: int
    name: str
    message_types: tuple[type, ...]
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    encode_item: Callable[[Any], bytes] | None = None

    def __post_init__(self) -> None:
        if not 0 < self.protocol_id <= MAX_PROTOCOL_ID or self.protocol_id == LINK_PROTOCOL:
            raise LocalProtocolError(f"protocol id {self.protocol_id} is reserved or out of range")


@dataclass(frozen=True, slots=True)
class _Entry:
    codec: ProtocolCodec
    handle: Handle
    admit: Admit | None
    link_down: LinkDown | None


class ProtocolRegistry:
    """The protocols a node runs side by side over its links."""

    def __init__(self) -> None:
        self._by_id: dict[int, _Entry] = {}
        #: The link item encoder of each message type (``encode``).
        self._by_type: dict[type, Callable[[Any], bytes]] = {}
        #: Items skipped because no protocol of their id is registered.
        self.unknown_items = 0
        #: Items skipped because their protocol's ``admit`` refused them.
        self.refused_items = 0

    def register(self, codec: ProtocolCodec, handle: Handle, admit: Admit | None = None,
                 link_down: LinkDown | None = None) -> None:
        """Run ``codec``'s protocol: its messages go to ``handle``, and the end of a
        link to ``link_down`` if given."""
        if codec.protocol_id in self._by_id:
            raise LocalProtocolError(f"protocol id {codec.protocol_id} is registered already")
        self._by_id[codec.protocol_id] = _Entry(codec, handle, admit, link_down)
        item = codec.encode_item or partial(_item_of, codec.protocol_id, codec.encode)
        for kind in codec.message_types:
            self._by_type[kind] = item

    def encode(self, message: object) -> bytes:
        """The link item carrying ``message`` (its protocol found by its type)."""
        item = self._by_type.get(type(message))
        if item is None:
            raise LocalProtocolError(f"no protocol registered sends {type(message).__name__}")
        return item(message)

    def dispatch(self, peer: PeerId, protocol: int, body: bytes, now: float) -> None:
        """Decode one item's body with its protocol's codec and hand it on."""
        entry = self._by_id.get(protocol)
        if entry is None:
            self.unknown_items += 1
            return
        if entry.admit is not None and not entry.admit(peer, now):
            self.refused_items += 1
            return
        entry.handle(peer, entry.codec.decode(body), now)

    def link_down(self, peer: PeerId, now: float) -> None:
        """Tell every protocol that asked that the link to ``peer`` is gone."""
        for entry in list(self._by_id.values()):
            if entry.link_down is not None:
                entry.link_down(peer, now)

    @property
    def protocol_ids(self) -> list[int]:
        return sorted(self._by_id)


def _item_of(protocol: int, encode: Callable[[Any], bytes], message: Any) -> bytes:
    """The link item of ``message`` for a codec without its own ``encode_item``."""
    return encode_item(protocol, encode(message))
