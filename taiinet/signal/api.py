"""``open_signaller``: run a signaller for the duration of an ``async with``."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence

import trio

from taiinet._groups import unwrap_own_groups
from taiinet.signal.server import Signaller, SignallerConfig
from taiinet.signal.transport import SignalTransport, default_transport
from taiinet.wire.identity import Identity

CLOSE_TIMEOUT = 5.0
"""Seconds a signaller spends closing its links politely on exit."""


@unwrap_own_groups
async def open_signaller(listen: str = "127.0.0.1:0", join: Sequence[str] = (),
                         identity: Identity | None = None, *,
                         transport: SignalTransport | None = None,
                         config: SignallerConfig | None = None,
                         rng: random.Random | None = None) -> AsyncIterator[Signaller]:
    """Start a signaller listening at ``listen`` that joins the mesh via ``join``.

    Yields the :class:`Signaller` (``.url``, ``.peer_id``) once it listens and
    has joined (a self-lookup through the first reachable ``join`` URL).
    """
    identity = identity or Identity.generate()
    transport = transport or default_transport()
    signaller = Signaller(identity=identity, transport=transport, config=config, rng=rng)
    async with transport.listen(identity, listen) as listener, trio.open_nursery() as nursery:
        await nursery.start(signaller.serve, listener, list(join))
        try:
            yield signaller
        finally:
            with trio.move_on_after(CLOSE_TIMEOUT):
                await signaller.close_links()
            nursery.cancel_scope.cancel()
