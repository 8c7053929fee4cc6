# taiinet: sans-io core
"""Parse a JSON-like query into the AST, and print the AST back as JSON.

``to_json(parse(q))`` is a canonical form of ``q`` (every operator explicit,
several top-level keys as ``$and``), and ``parse(to_json(f)) == f``.  Every
error is an ``InvalidQuery`` naming the path of the offending part.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import re2

from taiinet.pubsub.query.errors import InvalidQuery
from taiinet.pubsub.query.limits import DEFAULT_QUERY_LIMITS, REGEX_MAX_MEM, QueryLimits
from taiinet.pubsub.query.nodes import (
    RANGE_OPS,
    All,
    And,
    Compare,
    Contains,
    ElemMatch,
    Exists,
    Field,
    Filter,
    In,
    Nor,
    Not,
    Op,
    Or,
    Regex,
    Size,
)
from taiinet.pubsub.query.values import INT64_MAX, check_value, freeze, is_utf8, thaw

LOGICAL = ("$and", "$or", "$nor")
REGEX_OPTIONS = frozenset("ims")
#: Compiled patterns kept for reuse.
REGEX_CACHE = 4096


def compile_regex(pattern: str, options: str) -> Any:
    """Compile a pattern on re2 (linear time); raises ``re2.error`` on a bad pattern."""
    opts = re2.Options()
    opts.log_errors = False
    opts.max_mem = REGEX_MAX_MEM
    return re2.compile(regex_source(pattern, options), opts)


def regex_source(pattern: str, options: str) -> str:
    """The pattern with its options inlined (``(?i)...``), as handed to re2."""
    flags = "".join(sorted(set(options)))
    return f"(?{flags}){pattern}" if flags else pattern


@lru_cache(maxsize=REGEX_CACHE)
def regex_searcher(pattern: str, options: str) -> Callable[[str], bool]:
    """``text -> bool``: does the pattern occur in the text.

    A one-pattern ``re2.Set`` answers a yes/no search an order of magnitude
    faster than ``re2.compile(...).search``, which builds a match object.
    Searchers are cached, so identical patterns of many subscriptions share one.
    """
    opts = re2.Options()
    opts.log_errors = False
    opts.max_mem = REGEX_MAX_MEM
    searcher = re2.Set.SearchSet(opts)
    searcher.Add(regex_source(pattern, options))
    searcher.Compile()
    match = searcher.Match
    return lambda text: match(text) is not None


def _join(where: str, part: str | int) -> str:
    return f"{where}.{part}" if where else str(part)


class _Parser:
    def __init__(self, limits: QueryLimits) -> None:
        self.limits = limits
        self.nodes = 0

    def count(self, where: str, n: int = 1) -> None:
        self.nodes += n
        if self.nodes > self.limits.max_nodes:
            raise InvalidQuery(where, f"query has more than {self.limits.max_nodes} nodes")

    def depth(self, where: str, depth: int) -> None:
        if depth > self.limits.max_depth:
            raise InvalidQuery(where, f"query nested deeper than {self.limits.max_depth}")

    def string(self, where: str, s: str) -> None:
        if len(s) > self.limits.max_string:
            raise InvalidQuery(where, f"string longer than {self.limits.max_string}")
        if not is_utf8(s):
            raise InvalidQuery(where, "string is not valid Unicode (lone surrogate)")

    def literal(self, where: str, value: Any, depth: int) -> Any:
        problem = check_value(value, max_depth=self.limits.max_depth - depth + 1,
                              max_nodes=self.limits.max_nodes - self.nodes + 1,
                              max_string=self.limits.max_string)
        if problem:
            raise InvalidQuery(where, f"bad literal: {problem}")
        self.count(where, _size(value))
        return freeze(value)

    def filter(self, query: Any, where: str, depth: int) -> Filter:
        self.depth(where, depth)
        self.count(where)
        if not isinstance(query, Mapping):
            raise InvalidQuery(where, f"a query must be a map, not {type(query).__name__}")
        children: list[Filter] = []
        for key, operand in query.items():
            at = _join(where, key)
            if not isinstance(key, str):
                raise InvalidQuery(where, f"key {key!r} is not a string")
            self.string(at, key)
            if key.startswith("$"):
                children.append(self.logical(key, operand, at, depth + 1))
            else:
                children.append(self.field(key, operand, at, depth + 1))
        if len(children) == 1:
            return children[0]
        return And(children=tuple(children))

    def logical(self, key: str, operand: Any, where: str, depth: int) -> Filter:
        if key not in LOGICAL:
            raise InvalidQuery(where, f"unknown top-level operator {key} (use $and, $or, $nor)")
        if not isinstance(operand, list | tuple) or not operand:
            raise InvalidQuery(where, f"{key} takes a non-empty list of queries")
        kids = tuple(self.filter(q, _join(where, i), depth + 1) for i, q in enumerate(operand))
        if key == "$and":
            return And(children=kids)
        if key == "$or":
            return Or(children=kids)
        return Nor(children=kids)

    def field(self, path: str, operand: Any, where: str, depth: int) -> Field:
        if not path or any(not part or part.startswith("$") for part in path.split(".")):
            raise InvalidQuery(where, f"bad field path {path!r}")
        self.depth(where, depth)
        if _is_operator_map(operand, where):
            return Field(path=path, ops=self.ops(operand, where, depth))
        self.count(where)
        return Field(path=path, ops=(Compare(op="eq", value=self.literal(where, operand, depth)),))

    def ops(self, operators: Mapping[str, Any], where: str, depth: int) -> tuple[Op, ...]:
        self.depth(where, depth)
        result: list[Op] = []
        if "$options" in operators and "$regex" not in operators:
            raise InvalidQuery(_join(where, "$options"), "$options needs $regex")
        for name, operand in operators.items():
            if name == "$options":
                continue
            at = _join(where, name)
            self.count(at)
            result.append(self.op(name, operand, operators, at, depth + 1))
        return tuple(result)

    def op(self, name: str, operand: Any, siblings: Mapping[str, Any], where: str, depth: int
           ) -> Op:
        self.depth(where, depth)
        bare = name[1:]
        if bare in ("eq", "ne"):
            return Compare(op=bare, value=self.literal(where, operand, depth))
        if bare in RANGE_OPS:
            if isinstance(operand, list | tuple | Mapping):
                raise InvalidQuery(where,
                                   f"{name} takes a number, string, bytes, boolean or null")
            return Compare(op=bare, value=self.literal(where, operand, depth))
        if bare in ("in", "nin", "all"):
            if not isinstance(operand, list | tuple):
                raise InvalidQuery(where, f"{name} takes a list")
            values = self.literal(where, list(operand), depth)
            return All(values=values) if bare == "all" else In(values=values, negate=bare == "nin")
        if bare == "exists":
            if not isinstance(operand, bool):
                raise InvalidQuery(where, "$exists takes true or false")
            return Exists(present=operand)
        if bare == "contains":
            return Contains(value=self.literal(where, operand, depth))
        if bare == "regex":
            return self.regex(operand, siblings.get("$options", ""), where)
        if bare == "size":
            if (isinstance(operand, bool) or not isinstance(operand, int)
                    or not 0 <= operand <= INT64_MAX):
                raise InvalidQuery(where, "$size takes a non-negative 64-bit integer")
            return Size(size=operand)
        if bare == "elemMatch":
            if not isinstance(operand, Mapping) or not operand:
                raise InvalidQuery(where, "$elemMatch takes a non-empty map")
            if all(isinstance(k, str) and k.startswith("$") and k not in LOGICAL
                   for k in operand):
                return ElemMatch(ops=self.ops(operand, where, depth))
            return ElemMatch(filter=self.filter(operand, where, depth))
        if bare == "not":
            if not isinstance(operand, Mapping) or not operand or not _is_operator_map(
                    operand, where):
                raise InvalidQuery(where, "$not takes a non-empty map of operators")
            return Not(ops=self.ops(operand, where, depth))
        raise InvalidQuery(where, f"unknown operator {name}")

    def regex(self, pattern: Any, options: Any, where: str) -> Regex:
        if not isinstance(pattern, str):
            raise InvalidQuery(where, "$regex takes a string")
        self.string(where, pattern)
        if len(pattern) > self.limits.max_regex:
            raise InvalidQuery(where, f"pattern longer than {self.limits.max_regex}")
        if not isinstance(options, str) or not set(options) <= REGEX_OPTIONS:
            raise InvalidQuery(_join(where, "$options"), "$options takes letters from 'ims'")
        if len(set(options)) != len(options):
            raise InvalidQuery(_join(where, "$options"), "$options repeats a letter")
        try:
            compile_regex(pattern, options)
        except re2.error as exc:
            raise InvalidQuery(where, f"bad regular expression: {exc}") from None
        return Regex(pattern=pattern, options=options)


def _is_operator_map(operand: Any, where: str) -> bool:
    """True for ``{"$gt": 1, ...}``; a map mixing operators and fields is an error."""
    if not isinstance(operand, Mapping) or not operand:
        return False
    dollar = [isinstance(k, str) and k.startswith("$") for k in operand]
    if all(dollar):
        return True
    if any(dollar):
        raise InvalidQuery(where, "a map mixes operators and field names")
    return False


def _size(value: Any) -> int:
    if isinstance(value, list | tuple):
        return 1 + sum(_size(v) for v in value)
    if isinstance(value, Mapping):
        return 1 + sum(_size(v) for v in value.values())
    return 1


def parse(query: Any, limits: QueryLimits = DEFAULT_QUERY_LIMITS) -> Filter:
    """Parse a JSON-like query; raises ``InvalidQuery``."""
    return _Parser(limits).filter(query, "", 1)


def to_json(node: Filter) -> dict[str, Any]:
    """The canonical JSON-like form of a filter (parses back to an equal AST)."""
    if isinstance(node, Field):
        return {node.path: _ops_json(node.ops)}
    if isinstance(node, And):
        if not node.children:
            return {}
        return {"$and": [to_json(c) for c in node.children]}
    key = "$or" if isinstance(node, Or) else "$nor"
    return {key: [to_json(c) for c in node.children]}


def _ops_json(ops: tuple[Op, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for op in ops:
        if isinstance(op, Compare):
            out[f"${op.op}"] = thaw(op.value)
        elif isinstance(op, In):
            out["$nin" if op.negate else "$in"] = thaw(op.values)
        elif isinstance(op, All):
            out["$all"] = thaw(op.values)
        elif isinstance(op, Exists):
            out["$exists"] = op.present
        elif isinstance(op, Contains):
            out["$contains"] = thaw(op.value)
        elif isinstance(op, Regex):
            out["$regex"] = op.pattern
            if op.options:
                out["$options"] = op.options
        elif isinstance(op, Size):
            out["$size"] = op.size
        elif isinstance(op, ElemMatch):
            out["$elemMatch"] = (_ops_json(op.ops) if op.ops is not None
                                 else to_json(op.filter) if op.filter is not None else {})
        else:
            out["$not"] = _ops_json(op.ops)
    return out
