"""Every error the API can raise is a typed ``TaiiNetError`` (tests/test_node_api.py
checks that each is exported by ``taiinet``).

No bare ``ValueError`` or ``TypeError`` is raised by the package (the few
helpers that do are private and their callers turn it into a typed error),
and misuse of the API is a ``LocalProtocolError``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import taiinet
from taiinet.errors import LocalProtocolError
from taiinet.history.client import HistoryFetch, HistoryFetchConfig
from taiinet.history.seam import Seam
from taiinet.history.server import HistoryServerConfig
from taiinet.node import NodeConfig, NodeError, Subscription
from taiinet.node.errors import InvalidInput
from taiinet.node.history import HistoryConfig
from taiinet.pubsub.query import InvalidDocument, InvalidQuery, Query
from taiinet.pubsub.query.nodes import Field

PACKAGE = Path(taiinet.__file__).resolve().parent
#: ``(module, function)`` that raise a builtin error their only callers catch.
CAUGHT_INSIDE = {
    ("wire/base58.py", "b58decode"),     # PeerId.from_string -> InvalidPeerId
    ("wire/identity.py", "_decode_cid"),  # parse_peer_id -> InvalidPeerId
    ("transport/_wsframes.py", "take_binary_frames"),  # -> WebSocketMessageTooLarge
    # aiortc's parse_packet -> its _handle_data, which drops a packet on ValueError
    ("transport/_asyncio_sctp_params.py", "sound_decode_params"),
    ("transport/_asyncio_sctp_sound.py", "sound_parse_packet"),
}


def _builtin_raises() -> list[str]:
    found: list[str] = []
    for path in PACKAGE.rglob("*.py"):
        name = path.relative_to(PACKAGE).as_posix()
        if name.startswith("v1/"):
            continue
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
                        and isinstance(node.exc.func, ast.Name)
                        and node.exc.func.id in ("ValueError", "TypeError", "KeyError")
                        and (name, function.name) not in CAUGHT_INSIDE):
                    found.append(f"{name}:{node.lineno} {function.name} raises {node.exc.func.id}")
    return found


def test_no_bare_builtin_error_is_raised() -> None:
    assert _builtin_raises() == []


def test_there_is_one_invalid_peer_id() -> None:
    from taiinet.signal import errors as signal_errors
    from taiinet.wire import errors as wire_errors

    assert signal_errors.InvalidPeerId is wire_errors.InvalidPeerId is taiinet.InvalidPeerId


@pytest.mark.parametrize("error", [InvalidQuery, InvalidDocument])
def test_query_misuse_is_a_local_protocol_error(error: type) -> None:
    assert issubclass(error, LocalProtocolError)


@pytest.mark.parametrize("make", [
    lambda: HistoryConfig(max_seeders=0),
    lambda: HistoryFetchConfig(page_documents=0),
    lambda: HistoryFetchConfig(page_timeout=0),
    lambda: HistoryServerConfig(max_running=0),
    lambda: Seam(max_held=0),
    lambda: HistoryFetch(Query({}), [], None, lambda: 0, limit=-1),  # type: ignore[arg-type]
], ids=["node-config", "fetch-pages", "fetch-timeout", "server", "seam", "fetch-limit"])
def test_bad_history_bounds_are_local_errors(make: Callable[[], Any]) -> None:
    with pytest.raises(taiinet.HistoryUsageError):
        make()


def test_matching_a_non_document_is_invalid_document() -> None:
    query = Query({"a": [1]})
    with pytest.raises(InvalidDocument, match="set"):
        query.matches({"a": [{1}]})
    assert query.matches({"a": [1]}) and not query.matches({"a": [2]})


def test_a_query_from_a_non_ast_is_invalid_query() -> None:
    with pytest.raises(InvalidQuery, match="not a filter node"):
        Query.from_ast("a == 1")  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery, match="not an operator node"):
        Query.from_ast(Field(path="a", ops=("gt",))).matches({"a": 1})  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [{"contacts": 0}, {"subscription_buffer": 0},
                                 {"delivery_buffer_bytes": 0}, {"join_timeout": 0},
                                 {"join_retry": -1.0}, {"slow_policy": "wait"}])
def test_a_bad_node_config_is_refused_at_once(bad: dict[str, Any]) -> None:
    with pytest.raises(NodeError):
        NodeConfig(**bad)


def test_an_unknown_slow_policy_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="slow_policy"):
        Subscription(None, Query({}), buffer=1, policy="wait",  # type: ignore[arg-type]
                     on_close=lambda _: None)
