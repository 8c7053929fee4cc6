"""The shared action vocabulary of ``taiinet.core``: frozen values, ids returned once."""

from __future__ import annotations

import dataclasses

import pytest

from taiinet.core import CloseLink, NeighborUp, Send, SetTimer, Started
from taiinet.wire.peer_id import PeerId

PEER = PeerId.from_public_key(bytes(32))


def test_actions_are_frozen_values() -> None:
    send = Send(peer=PEER, message=b"x")
    assert send == Send(peer=PEER, message=b"x", lazy=False, address=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        send.lazy = True  # type: ignore[misc]
    assert SetTimer(at=1.0, timer="t") == SetTimer(at=1.0, timer="t")
    assert CloseLink(peer=PEER) != CloseLink(peer=PEER, failed=True)
    assert hash(NeighborUp(peer=PEER)) == hash(NeighborUp(peer=PEER))


def test_started_unpacks_to_id_and_actions() -> None:
    started = Started(7, [Send(peer=PEER, message=1)])
    op_id, actions = started
    assert op_id == started.id == 7
    assert actions == started.actions == [Send(peer=PEER, message=1)]


def test_the_signalling_cores_take_the_inputs_of_a_core_that_names_links() -> None:
    import inspect

    from taiinet.core.links import LinkCore
    from taiinet.signal.client_core import SignalClientCore
    from taiinet.signal.signaller_core import SignallerCore

    inputs = [name for name in vars(LinkCore) if name.startswith(("start", "handle_"))]
    assert len(inputs) == 6
    for core in (SignallerCore, SignalClientCore):
        for name in inputs:
            wanted = list(inspect.signature(getattr(LinkCore, name)).parameters)
            assert list(inspect.signature(getattr(core, name)).parameters) == wanted, (
                core.__name__, name)
