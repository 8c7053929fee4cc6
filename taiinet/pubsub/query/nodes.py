# taiinet: sans-io core
"""The typed, immutable AST of a query.

A ``Filter`` is a boolean combination (``And``/``Or``/``Nor``) of ``Field``
tests; a ``Field`` applies a conjunction of operators (``Op``) to the values
found at a dotted path.  Literal operands are frozen document values
(``values.freeze``): tuples for lists, ``FrozenMap`` for maps.

``And(())`` is the query that matches every document (``{}``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from taiinet.pubsub.query.values import value_key

#: Comparison operators, by their name without the ``$``.
COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte")
RANGE_OPS = ("gt", "gte", "lt", "lte")


@dataclass(frozen=True, slots=True, kw_only=True)
class Compare:
    """``$eq $ne $gt $gte $lt $lte``."""

    op: str
    value: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class In:
    """``$in`` (``negate=False``) and ``$nin`` (``negate=True``)."""

    values: tuple[Any, ...]
    negate: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Exists:
    present: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Contains:
    """Substring of a string, or element of an array (TaiiNet's own operator)."""

    value: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Regex:
    pattern: str
    options: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class All:
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Size:
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ElemMatch:
    """An array element matches: a sub-query on the element (``filter``) or operators (``ops``).

    Exactly one of ``filter`` and ``ops`` is set.
    """

    filter: Filter | None = None
    ops: tuple[Op, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Not:
    ops: tuple[Op, ...]


Op = Compare | In | Exists | Contains | Regex | All | Size | ElemMatch | Not


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    path: str
    ops: tuple[Op, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class And:
    children: tuple[Filter, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Or:
    children: tuple[Filter, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Nor:
    children: tuple[Filter, ...]


Filter = Field | And | Or | Nor

MATCH_ALL: Filter = And(children=())


#: Field names of each AST node class, looked up once (``dataclasses.fields``
#: is a third of ``node_key``'s time otherwise; the simulator keys every
#: advert's queries).  Bounded by the number of node classes.
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def node_key(node: Any) -> Any:
    """A hashable key of an AST, equal exactly when two ASTs mean the same literals.

    Dataclass equality would say ``Compare(op="eq", value=1) == Compare(op="eq",
    value=True)`` (Python's ``1 == True``); the key keeps booleans, numbers and
    strings apart as the matcher does.
    """
    kind = type(node)
    names = _FIELD_NAMES.get(kind)
    if names is None:
        if not is_dataclass(node):
            if isinstance(node, tuple):
                return ("tuple", *[node_key(v) for v in node])
            return value_key(node)
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(node))
    return (kind.__name__, *[node_key(getattr(node, name)) for name in names])
