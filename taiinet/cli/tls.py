"""The CLI's TLS options: ``--tls-cert``/``--tls-key`` to listen behind TLS (``wss://``),
``--tls-ca`` to trust a private CA when dialing ``wss://``.

Files are loaded before anything starts, so a missing or mismatched file is
one line and exit 2 (``TlsConfigError``), not a failure later.
"""

from __future__ import annotations

import argparse
import ssl

from taiinet.transport.errors import TlsConfigError
from taiinet.transport.tls import client_context, server_context


def add_arguments(parser: argparse.ArgumentParser, listen_help: str) -> None:
    """Add ``--tls-cert``, ``--tls-key`` (listening, see ``listen_help``) and ``--tls-ca``."""
    parser.add_argument("--tls-cert", metavar="PEM",
                        help=f"certificate chain (PEM) to {listen_help}; needs --tls-key")
    parser.add_argument("--tls-key", metavar="PEM", help="private key (PEM) of --tls-cert")
    parser.add_argument("--tls-ca", metavar="PEM",
                        help="CA certificates (PEM) that verify the wss:// servers dialed "
                             "(default: the system's CAs)")


def server_tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The server context of ``--tls-cert``/``--tls-key``, or ``None`` without them."""
    if args.tls_cert is None and args.tls_key is None:
        return None
    if args.tls_cert is None or args.tls_key is None:
        raise TlsConfigError("give both --tls-cert and --tls-key")
    return server_context(args.tls_cert, args.tls_key)


def client_tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The client context of ``--tls-ca``, or ``None`` (the system's CAs)."""
    return None if args.tls_ca is None else client_context(args.tls_ca)
