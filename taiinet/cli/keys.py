"""``taiinet keygen PATH`` and ``taiinet id PATH``: make a key file, print its peer id."""

from __future__ import annotations

import argparse

from taiinet.wire.identity import Identity


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keygen = subparsers.add_parser(
        "keygen", help="create an Ed25519 key file (mode 0600) and print its peer id",
        description="Create a new Ed25519 key file at PATH (never overwriting one) and print "
                    "its peer id.")
    keygen.add_argument("path", metavar="PATH", help="where to write the key file")
    keygen.set_defaults(handler=keygen_command)
    show = subparsers.add_parser("id", help="print the peer id of a key file",
                                 description="Print the peer id of the key file at PATH.")
    show.add_argument("path", metavar="PATH", help="a key file made by `taiinet keygen`")
    show.set_defaults(handler=id_command)


def keygen_command(args: argparse.Namespace) -> int:
    identity = Identity.generate()
    identity.save(args.path)
    print(identity.peer_id)
    return 0


def id_command(args: argparse.Namespace) -> int:
    print(Identity.load(args.path).peer_id)
    return 0
