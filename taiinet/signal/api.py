"""``open_signaller``: run a signaller for the duration of an ``async with``."""

from __future__ import annotations

import logging
import random
import socket
import ssl
from collections.abc import AsyncIterator, Sequence
from urllib.parse import urlsplit, urlunsplit

import trio

from taiinet._groups import unwrap_own_groups
from taiinet.signal.errors import SignalUsageError
from taiinet.signal.server import Signaller, SignallerConfig
from taiinet.signal.transport import SignalListener, SignalTransport, default_transport
from taiinet.signal.urls import check_signaller_url, is_wildcard
from taiinet.transport.connection import Connection
from taiinet.wire.identity import Identity

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0
"""Seconds a signaller spends closing its links politely on exit."""


@unwrap_own_groups
async def open_signaller(listen: str = "127.0.0.1:0", join: Sequence[str] = (),
                         identity: Identity | None = None, *,
                         advertise: str | None = None,
                         transport: SignalTransport | None = None,
                         config: SignallerConfig | None = None,
                         rng: random.Random | None = None,
                         ssl_context: ssl.SSLContext | None = None,
                         ) -> AsyncIterator[Signaller]:
    """Start a signaller listening at ``listen`` that joins the mesh via ``join``.

    ``advertise``: the URL other signallers and peers dial to reach this one
    (``ws://HOST[:PORT]`` or ``wss://``; without a port, the port listened at, unless
    the scheme differs from the listener's: ``wss://`` advertised by a plain
    listener is a TLS-terminating proxy, on the scheme's default port), used in its
    greetings, DHT contacts and its peers' records instead of the address it
    binds.  When ``listen`` binds every interface (``0.0.0.0``, ``[::]``) and
    no ``advertise`` is given, the host's name is advertised
    (``ws://<hostname>:PORT``) with a warning, never the unroutable
    ``ws://0.0.0.0:PORT``.  ``ssl_context``: a server context
    (``taiinet.transport.tls.server_context(cert, key)``): clients speak TLS
    first and the URL is ``wss://`` (a page served over https can only open
    ``wss://``); an ``advertise`` URL must then be ``wss://`` too.  (Behind a
    TLS-terminating proxy, listen without it and advertise the proxy's
    ``wss://`` URL.)  Joining ``wss://`` signallers verifies their
    certificates with ``transport``'s client context.  Yields the :class:`Signaller` (``.url``,
    ``.peer_id``) once it listens and has joined (a self-lookup through the
    first reachable ``join`` URL).
    """
    if advertise is not None:
        check_signaller_url(advertise)
        if ssl_context is not None and not advertise.startswith("wss://"):
            raise SignalUsageError(f"listening with TLS, advertise a wss:// URL, not "
                                   f"{advertise!r}")
    identity = identity or Identity.generate()
    transport = transport or default_transport()
    signaller = Signaller(identity=identity, transport=transport, config=config, rng=rng)
    async with transport.listen(identity, listen, ssl_context=ssl_context) as bound, \
            trio.open_nursery() as nursery:
        url = advertised_url(bound.url, advertise, socket.gethostname())
        if advertise is None and url != bound.url:
            log.warning("listening on every interface; advertising %s (this host's name): "
                        "give the URL other machines dial with --advertise / advertise=", url)
        listener = bound if url == bound.url else _Advertised(bound, url)
        await nursery.start(signaller.serve, listener, list(join))
        try:
            yield signaller
        finally:
            with trio.move_on_after(CLOSE_TIMEOUT):
                await signaller.close_links()
            nursery.cancel_scope.cancel()


def advertised_url(bound_url: str, advertise: str | None, hostname: str) -> str:
    """The URL a signaller listening at ``bound_url`` hands out (see ``open_signaller``)."""
    bound = urlsplit(bound_url)
    if advertise is not None:
        chosen = urlsplit(advertise)
        # Another scheme (wss:// in front of ws://) means a TLS-terminating proxy:
        # its port is the scheme's default, not ours.
        if chosen.port is None and bound.port is not None and chosen.scheme == bound.scheme:
            host = f"[{chosen.hostname}]" if ":" in (chosen.hostname or "") else chosen.hostname
            return urlunsplit(chosen._replace(netloc=f"{host}:{bound.port}"))
        return advertise
    if bound.hostname is not None and is_wildcard(bound.hostname):
        return f"{bound.scheme}://{hostname}:{bound.port}"
    return bound_url


class _Advertised:
    """A listener that reports the advertised URL instead of the bound one."""

    def __init__(self, inner: SignalListener, url: str) -> None:
        self._inner = inner
        self._url = url

    @property
    def url(self) -> str:
        return self._url

    async def accept(self) -> Connection:
        return await self._inner.accept()
