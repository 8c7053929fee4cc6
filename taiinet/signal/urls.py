"""Signaller URLs: checked before anything is dialed, so a typo fails at once.

A signaller is a WebSocket server, so its URL is ``ws://HOST[:PORT][/PATH]``,
or ``wss://`` behind TLS (what a page served over https must use; Noise
secures the link either way).  Without this check a ``http://`` URL or a bare ``HOST:PORT`` would
only surface as retries ("no signaller reachable") with the reason lost.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from taiinet.signal.errors import InvalidSignallerUrl

#: The hosts a listener binds to for "every interface"; nobody can dial them.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def check_signaller_url(url: str) -> str:
    """``url`` if it is a ``ws://`` or ``wss://`` URL with a host and a valid port,
    else ``InvalidSignallerUrl`` saying what is wrong."""
    if "://" not in url:
        raise InvalidSignallerUrl(f"signaller URL {url!r} has no scheme: write ws://{url}")
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise InvalidSignallerUrl(
            f"signaller URL {url!r} must start with ws:// or wss:// (a signaller is a "
            f"WebSocket server), not {parts.scheme}://")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise InvalidSignallerUrl(f"signaller URL {url!r} has a bad port") from None
    if not parts.hostname:
        raise InvalidSignallerUrl(f"signaller URL {url!r} has no host")
    return url


def is_wildcard(host: str) -> bool:
    """Whether ``host`` means "every interface" (an address to bind, never to dial)."""
    return host.strip("[]") in WILDCARD_HOSTS
