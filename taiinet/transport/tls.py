"""TLS for ``wss://``: contexts from PEM files, and telling a verification failure apart.

TLS adds what browsers need (a page served over https may only open
``wss://``), not trust: the Noise handshake still runs inside the WebSocket
and still proves the peer id.  A server wraps each TCP client in TLS before
the HTTP upgrade (``taiinet.transport.websocket``); a client verifies the
server's certificate against the system's CAs by default, or against the CA
it is given (a private CA, a test's).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from taiinet.transport.errors import TlsConfigError


def server_context(cert_path: str | Path, key_path: str | Path) -> ssl.SSLContext:
    """A server context presenting ``cert_path`` (PEM, the chain) signed with ``key_path``.

    ``TlsConfigError`` naming the file when either is missing or not a matching PEM pair.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    for path in (cert_path, key_path):
        if not Path(path).is_file():
            raise TlsConfigError(f"TLS file {str(path)!r} does not exist")
    try:
        context.load_cert_chain(str(cert_path), str(key_path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise TlsConfigError(f"cannot load the TLS certificate {str(cert_path)!r} with the "
                             f"key {str(key_path)!r}: {_reason(exc)}") from None
    return context


def client_context(ca_path: str | Path | None = None) -> ssl.SSLContext:
    """A client context that verifies servers against ``ca_path`` (PEM), or the
    system's CAs when ``None``.  ``TlsConfigError`` if the file cannot be loaded."""
    if ca_path is None:
        return ssl.create_default_context()
    if not Path(ca_path).is_file():
        raise TlsConfigError(f"TLS CA file {str(ca_path)!r} does not exist")
    try:
        return ssl.create_default_context(cafile=str(ca_path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise TlsConfigError(f"cannot load the TLS CA file {str(ca_path)!r}: "
                             f"{_reason(exc)}") from None


def certificate_failure(error: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification error behind ``error`` (trio and trio-websocket
    wrap it in their own errors and groups), or ``None``."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        for inner in (current.__cause__, current.__context__):
            if inner is not None:
                pending.append(inner)
    return None


def describe_certificate_failure(error: ssl.SSLCertVerificationError) -> str:
    """"certificate verify failed: unable to get local issuer certificate", briefly."""
    return f"certificate verify failed: {error.verify_message or error.reason or error}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
