"""The stream API of a node: ``node.stream_publish(...)`` and ``node.stream_watch(...)``.

A broadcaster signs an announcement (``taiinet.stream.announce``) and
publishes it as the pubsub document ``{"stream": name, "announcement":
bytes}`` every ``ANNOUNCE_INTERVAL`` while live; a viewer subscribes to
``{"stream": name}``, checks the first announcement it gets and joins the
tree rooted at its signer.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio

from taiinet.media.packets import MediaPacket
from taiinet.stream import announce
from taiinet.stream.codec import Track
from taiinet.stream.errors import StreamDecodeError, StreamNotFound
from taiinet.stream.seal import GROUP_SECONDS
from taiinet.stream.service import StreamSession

if TYPE_CHECKING:
    from taiinet.node.node import Node

#: Seconds between two publications of a live stream's announcement.
ANNOUNCE_INTERVAL = 1.0


class Broadcast:
    """A live stream this node broadcasts: ``send`` packets as they are made."""

    def __init__(self, session: StreamSession) -> None:
        self.session = session
        self._last_flush = trio.current_time()
        self.keyframe_wanted = False
        session.on_keyframe_request = self._keyframe_request

    def _keyframe_request(self) -> None:
        self.keyframe_wanted = True

    def send(self, packets: Iterable[MediaPacket]) -> None:
        self.session.publish(list(packets))
        now = trio.current_time()
        if now - self._last_flush >= GROUP_SECONDS:
            self.session.flush()
            self._last_flush = now

    @property
    def stats(self) -> object:
        return self.session.stats


class Viewing:
    """A stream this node watches: its tracks, and its packets by ``async for``."""

    def __init__(self, session: StreamSession) -> None:
        self.session = session
        self.tracks: tuple[Track, ...] = session.tracks

    def __aiter__(self) -> AsyncIterator[MediaPacket]:
        return self.session.packets.__aiter__()


@asynccontextmanager
async def publish(node: Node, name: str, tracks: tuple[Track, ...], *,
                  slots: int = 4) -> AsyncIterator[Broadcast]:
    signed = announce.sign(node.identity, announce.Announcement(
        name=name, broadcaster=node.peer_id, started=int(time.time() * 1000), seq=0,
        tracks=tracks))
    session = node.streams.open(signed, slots)

    async def announce_loop() -> None:
        while True:
            await node.publish({"stream": name, "announcement": signed.raw})
            await trio.sleep(ANNOUNCE_INTERVAL)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(announce_loop)
            try:
                yield Broadcast(session)
            finally:
                session.flush()
                nursery.cancel_scope.cancel()
    finally:
        node.streams.close(session)


@asynccontextmanager
async def watch(node: Node, name: str, *, slots: int = 2,
                timeout: float = 30.0) -> AsyncIterator[Viewing]:
    signed: announce.SignedAnnouncement | None = None
    with trio.move_on_after(timeout):
        async with node.subscribe({"stream": name}) as sub:
            async for message in sub:
                raw = message.data.get("announcement") if isinstance(message.data, dict) else None
                if not isinstance(raw, bytes):
                    continue
                try:
                    candidate = announce.verify(raw)
                except StreamDecodeError:
                    continue
                if candidate.announcement.name == name:
                    signed = candidate
                    break
    if signed is None:
        raise StreamNotFound(f"no announcement of stream {name!r} within {timeout} s")
    session = node.streams.open(signed, slots)
    try:
        yield Viewing(session)
    finally:
        node.streams.close(session)
