"""One-line summaries of link messages and core actions for ``-vv`` debug output.

The runner logs every message it hands a core and every action a core returns
at DEBUG level (``taiinet.link.trace``), so the steps of a delivery (join,
adverts, pushes, hand-off) can be followed across processes by their wall-clock
stamps.  Summaries name the type, the peer (last 6 characters of its id) and
the fields that decide routing; never payloads.
"""

from __future__ import annotations

import logging
from dataclasses import fields, is_dataclass
from typing import Any

log = logging.getLogger(__name__)

#: Fields shown in a summary when a message or action has them (never payloads).
_SHOWN = ("message_id", "hops", "tree_link", "root", "root_distance", "version", "failed",
          "lazy", "peer", "subscription_ids")
#: Characters of a peer id or message id shown (their tails tell peers apart).
_ID_TAIL = 6


def short(value: object) -> str:
    """A peer id as its last characters, bytes as the first hex digits, else ``str``."""
    if isinstance(value, bytes | bytearray):
        return value.hex()[:8]
    if isinstance(value, str) and len(value) > 2 * _ID_TAIL:
        return value[-_ID_TAIL:]
    if isinstance(value, tuple | list) and len(value) > 4:
        return f"[{len(value)}]"
    return str(value)


def summary(item: object) -> str:
    """``Type(field=value ...)`` of a message or action, nested one level (``Send.message``)."""
    if not is_dataclass(item):
        return type(item).__name__
    names = {f.name for f in fields(item)}
    parts = [f"{name}={short(getattr(item, name))}" for name in _SHOWN if name in names]
    if "filters" in names:
        parts.append(f"filters={len(getattr(item, 'filters', ()))}")
    for nested in ("message", "advert"):
        if nested in names:
            parts.append(summary(getattr(item, nested)))
    return f"{type(item).__name__}({' '.join(parts)})"


def trace_in(peer: str, message: Any) -> None:
    if log.isEnabledFor(logging.DEBUG):
        log.debug("in  %s %s", short(peer), summary(message))


def trace_out(actions: list[Any]) -> None:
    if log.isEnabledFor(logging.DEBUG):
        for action in actions:
            log.debug("out %s", summary(action))
