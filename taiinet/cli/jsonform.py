"""The CLI's JSON form of documents: every document value, losslessly, as strict JSON.

A document may hold values JSON has no text for (bytes, infinite floats), and
map keys that would then be ambiguous.  ``sub`` writes, and ``pub`` and
``sub``'s QUERY_JSON read, this form (docs/node.md, "JSON form"):

* bytes ``b"..."``         -> ``{"$bytes": "<standard base64, padded>"}``
* ``inf``, ``-inf``, NaN   -> ``{"$float": "inf"}``, ``{"$float": "-inf"}``, ``{"$float": "nan"}``
* a map key of one or more ``$`` then ``bytes`` or ``float`` (``"$bytes"``,
  ``"$$float"``...) gets one more ``$`` (``"$$bytes"``); reading takes one away.

Every other value is written as itself, so plain JSON documents read and
print unchanged, and ``from_json(to_json(d)) == d`` for every document.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from taiinet.node.errors import InvalidInput

BYTES_TAG = "$bytes"
FLOAT_TAG = "$float"
_TAGGED_KEY = re.compile(r"\$+(?:bytes|float)")
_FLOATS = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def to_json(value: Any) -> Any:
    """``value`` (a document) in the JSON form: only JSON types, finite floats."""
    if isinstance(value, bytes | bytearray):
        return {BYTES_TAG: base64.b64encode(value).decode("ascii")}
    if isinstance(value, float) and not math.isfinite(value):
        return {FLOAT_TAG: "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, Mapping):
        return {_escape(key): to_json(item) for key, item in value.items()}
    return value


def from_json(value: Any) -> Any:
    """The document a JSON-form value stands for; ``InvalidInput`` for a bad tag."""
    if isinstance(value, list):
        return [from_json(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, item),) = value.items()
            if key == BYTES_TAG:
                return _bytes(item)
            if key == FLOAT_TAG:
                if item not in _FLOATS:
                    raise InvalidInput(f'{FLOAT_TAG} must be "inf", "-inf" or "nan", not {item!r}')
                return _FLOATS[item]
        return {_unescape(key): from_json(item) for key, item in value.items()}
    return value


def dumps(value: Any) -> str:
    """One line of strict JSON (no ``NaN``/``Infinity`` tokens) for a document."""
    return json.dumps(to_json(value), separators=(",", ":"), allow_nan=False)


def loads(text: str, what: str) -> Any:
    """Parse a JSON-form text; ``InvalidInput`` naming ``what`` when it is not."""
    try:
        return from_json(json.loads(text))
    except ValueError as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc}") from None
    except InvalidInput as exc:
        raise InvalidInput(f"{what}: {exc}") from None


def _bytes(item: Any) -> bytes:
    if not isinstance(item, str):
        raise InvalidInput(f"{BYTES_TAG} must be a base64 string, not {item!r}"[:200])
    try:
        return base64.b64decode(item, validate=True)
    except binascii.Error:
        raise InvalidInput(f"{BYTES_TAG} is not standard padded base64: {item!r}"[:200]) from None


def _escape(key: str) -> str:
    return "$" + key if _TAGGED_KEY.fullmatch(key) else key


def _unescape(key: str) -> str:
    return key[1:] if key.startswith("$$") and _TAGGED_KEY.fullmatch(key) else key
