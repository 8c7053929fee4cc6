# taiinet: sans-io core
"""Compile a filter into a Python closure that tests one document.

Theory of operation.  A dotted path resolves to the list of values it reaches
(``resolve``): through maps by key, through arrays by numeric index and into
every map element of an array (MongoDB's implicit array traversal); an empty
list means the field is missing.  A value operator (``$eq``, ranges, ``$in``,
``$contains``, ``$regex``) holds when it holds for one resolved value or for
one element of a resolved array; ``$size``, ``$all`` and ``$elemMatch`` look
at arrays; ``$ne``, ``$nin`` and ``$not`` are negations and so hold for a
missing field; ``$eq: null`` holds for a missing field.  Comparisons order
values only within one type class, and null is a class of its own (as in
MongoDB): ``$gte: null`` and ``$lte: null`` mean ``$eq: null`` (null or
missing), ``$gt: null`` and ``$lt: null`` hold for nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from taiinet.pubsub.query.errors import InvalidQuery
from taiinet.pubsub.query.nodes import (
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
from taiinet.pubsub.query.parser import regex_searcher
from taiinet.pubsub.query.values import (
    BOOL,
    BYTES,
    LIST,
    MAP,
    NULL,
    NUMBER,
    STRING,
    type_class,
    value_key,
)

Matcher = Callable[[Any], bool]
ValuesTest = Callable[[list[Any]], bool]
ValueTest = Callable[[Any], bool]

_NUMBERS = (int, float)
#: Paths whose resolver functions are kept for reuse.
RESOLVER_CACHE = 4096


def resolve(document: Any, parts: tuple[str, ...]) -> list[Any]:
    """Every value the path ``parts`` reaches in ``document`` (empty when missing)."""
    out: list[Any] = []
    _resolve(document, parts, 0, out)
    return out


def _resolve(value: Any, parts: tuple[str, ...], i: int, out: list[Any]) -> None:
    if i == len(parts):
        out.append(value)
        return
    key = parts[i]
    if isinstance(value, dict):
        if key in value:
            _resolve(value[key], parts, i + 1, out)
    elif isinstance(value, list):
        if key.isdigit() and key.isascii():
            index = int(key)
            if index < len(value):
                _resolve(value[index], parts, i + 1, out)
        for element in value:
            if isinstance(element, dict):
                _resolve(element, parts, i, out)


@lru_cache(maxsize=RESOLVER_CACHE)
def resolver(path: str) -> Callable[[Any], list[Any]]:
    """A fast ``resolve`` for one path (shared by every query on that path)."""
    parts = tuple(path.split("."))
    if len(parts) == 1:
        key = parts[0]

        def one(document: Any) -> list[Any]:
            if isinstance(document, dict):
                if key in document:
                    return [document[key]]
                return []
            return resolve(document, parts)

        return one
    return lambda document: resolve(document, parts)


def equal_test(operand: Any) -> ValueTest:
    """Test whether a document value equals ``operand``."""
    cls = type_class(operand)
    if cls == NUMBER:
        return lambda x: x == operand and type(x) in _NUMBERS
    if cls in (STRING, BYTES):
        kind = type(operand)
        return lambda x: x == operand and type(x) is kind
    if cls in (LIST, MAP):
        key = value_key(operand)
        kinds = list if cls == LIST else dict
        return lambda x: isinstance(x, kinds) and value_key(x) == key
    return lambda x: x is operand  # None, True, False


def range_test(op: str, operand: Any) -> ValueTest:
    cls = type_class(operand)
    kinds: tuple[type, ...] = _NUMBERS if cls == NUMBER else (type(operand),)
    if op == "gt":
        return lambda x: type(x) in kinds and x > operand
    if op == "gte":
        return lambda x: type(x) in kinds and x >= operand
    if op == "lt":
        return lambda x: type(x) in kinds and x < operand
    return lambda x: type(x) in kinds and x <= operand


def any_value(test: ValueTest) -> ValuesTest:
    """Holds when ``test`` holds for a resolved value or an element of a resolved array."""

    def check(values: list[Any]) -> bool:
        for v in values:
            if test(v):
                return True
            if isinstance(v, list):
                for e in v:
                    if test(e):
                        return True
        return False

    return check


_SCALAR_CLASSES = {type(None): NULL, bool: BOOL, int: NUMBER, float: NUMBER, str: STRING,
                   bytes: BYTES}


def in_test(values: tuple[Any, ...]) -> ValueTest:
    scalars: set[Any] = set()
    others: list[ValueTest] = []
    for v in values:
        if isinstance(v, tuple) or hasattr(v, "keys"):
            others.append(equal_test(v))
        else:
            scalars.add((_SCALAR_CLASSES[type(v)], v))
    classes = _SCALAR_CLASSES

    def test(x: Any) -> bool:
        cls = classes.get(type(x))
        if cls is not None:
            return (cls, x) in scalars
        return any(t(x) for t in others)

    return test


def contains_test(operand: Any) -> ValueTest:
    element = equal_test(operand)
    if isinstance(operand, str):
        return lambda x: (type(x) is str and operand in x) or (
            isinstance(x, list) and any(element(e) for e in x))
    return lambda x: isinstance(x, list) and any(element(e) for e in x)


def null_comparison(op: Op) -> Op | None:
    """The meaning of a range comparison with null: ``$eq: null`` for ``$gte``/``$lte``,
    the empty ``$in`` (nothing) for ``$gt``/``$lt``; ``None`` for any other operator."""
    if isinstance(op, Compare) and op.value is None and op.op in ("gt", "gte", "lt", "lte"):
        return Compare(op="eq", value=None) if op.op in ("gte", "lte") else In(values=())
    return None


def compile_op(op: Op) -> ValuesTest:
    """Compile one operator into a test on the resolved values of a path."""
    meaning = null_comparison(op)
    if meaning is not None:
        return compile_op(meaning)
    if isinstance(op, Compare):
        if op.op in ("eq", "ne"):
            test = any_value(equal_test(op.value))
            if op.value is None:
                base = test
                test = lambda values: not values or base(values)  # noqa: E731
            if op.op == "ne":
                positive = test
                return lambda values: not positive(values)
            return test
        return any_value(range_test(op.op, op.value))
    if isinstance(op, In):
        test = any_value(in_test(op.values))
        if any(v is None for v in op.values):
            base = test
            test = lambda values: not values or base(values)  # noqa: E731
        if op.negate:
            positive = test
            return lambda values: not positive(values)
        return test
    if isinstance(op, Exists):
        return (lambda values: bool(values)) if op.present else (lambda values: not values)
    if isinstance(op, Contains):
        return any_value(contains_test(op.value))
    if isinstance(op, Regex):
        return any_value(value_test(op) or _never)
    if isinstance(op, All):
        if not op.values:
            return lambda values: False
        tests = [compile_op(Compare(op="eq", value=v)) for v in op.values]
        return lambda values: all(t(values) for t in tests)
    if isinstance(op, Size):
        size = op.size
        return lambda values: any(isinstance(v, list) and len(v) == size for v in values)
    if isinstance(op, ElemMatch):
        if op.filter is not None:
            doc_test = compile_filter(op.filter)
            element: ValueTest = lambda e: isinstance(e, dict) and doc_test(e)  # noqa: E731
        else:
            ops_test = compile_ops(op.ops or ())
            element = lambda e: ops_test([e])  # noqa: E731
        return lambda values: any(
            isinstance(v, list) and any(element(e) for e in v) for v in values)
    if isinstance(op, Not):
        inner = compile_ops(op.ops)
        return lambda values: not inner(values)
    raise InvalidQuery("", f"not an operator node: {op!r}")


def compile_ops(ops: tuple[Op, ...]) -> ValuesTest:
    tests = [compile_op(op) for op in ops]
    if len(tests) == 1:
        return tests[0]
    return lambda values: all(t(values) for t in tests)


_MISSING = object()


def _never(value: Any) -> bool:
    return False


def value_test(op: Op) -> ValueTest | None:
    """The per-value test of an operator that holds when one value or element passes it.

    ``None`` for operators that look at arrays, at missing fields, or negate.
    """
    if isinstance(op, Compare):
        if op.value is None:
            return _never if op.op in ("gt", "lt") else None
        if op.op == "eq":
            return equal_test(op.value)
        if op.op in ("gt", "gte", "lt", "lte"):
            return range_test(op.op, op.value)
        return None
    if isinstance(op, In):
        if op.negate or any(v is None for v in op.values):
            return None
        return in_test(op.values)
    if isinstance(op, Contains):
        return contains_test(op.value)
    if isinstance(op, Regex):
        search = regex_searcher(op.pattern, op.options)
        return lambda x: type(x) is str and search(x)
    return None


def _compile_field(node: Field) -> Matcher:
    get = resolver(node.path)
    compiled: list[ValuesTest] = []  # the general test, compiled on first use

    def general(document: Any) -> bool:
        if not compiled:
            compiled.append(compile_ops(node.ops))
        return compiled[0](get(document))

    tests = [value_test(op) for op in node.ops]
    if any(t is None for t in tests):
        return general
    parts = tuple(node.path.split("."))
    if len(tests) == 1:
        test = tests[0]
        assert test is not None

        def single(document: Any) -> bool:
            # Fast path: maps all the way down; arrays on the way take the general path.
            value = document
            for key in parts:
                if type(value) is not dict:
                    return general(document)
                value = value.get(key, _MISSING)
                if value is _MISSING:
                    return False
            if test(value):
                return True
            if type(value) is list:
                for element in value:
                    if test(element):
                        return True
            return False

        return single
    conjunction = [t for t in tests if t is not None]

    def several(document: Any) -> bool:
        value = document
        for key in parts:
            if type(value) is not dict:
                return general(document)
            value = value.get(key, _MISSING)
            if value is _MISSING:
                return False
        if type(value) is list:
            return general(document)
        for t in conjunction:  # noqa: SIM110 -- a loop is faster than all() on a generator
            if not t(value):
                return False
        return True

    return several


def compile_filter(node: Filter) -> Matcher:
    """Compile a filter into ``document -> bool``."""
    if isinstance(node, Field):
        return _compile_field(node)
    if not isinstance(node, And | Or | Nor):
        raise InvalidQuery("", f"not a filter node: {node!r}")
    kids = [compile_filter(c) for c in node.children]
    if isinstance(node, And):
        if not kids:
            return lambda document: True
        if len(kids) == 1:
            return kids[0]
        if len(kids) == 2:
            first, second = kids
            return lambda document: first(document) and second(document)

        def conjunction(document: Any) -> bool:
            for kid in kids:  # noqa: SIM110 -- a loop is faster than all() on a generator
                if not kid(document):
                    return False
            return True

        return conjunction
    if isinstance(node, Or):
        if len(kids) == 2:
            first, second = kids
            return lambda document: first(document) or second(document)

        def disjunction(document: Any) -> bool:
            for kid in kids:  # noqa: SIM110 -- a loop is faster than any() on a generator
                if kid(document):
                    return True
            return False

        return disjunction
    return lambda document: not any(k(document) for k in kids)
