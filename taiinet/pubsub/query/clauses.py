# taiinet: sans-io core
"""Planning a query for ``SubscriptionIndex``: the clauses it is looked up by.

A *clause* is a conjunction of elementary predicates, each answerable from
one path's lookup table (``tables``): an equality, a bound, a number interval
or a regex.  ``plan`` turns a query into the clauses to index (see the theory
of operation in ``index``); a query with nothing indexable plans to ``None``
and is checked on every document.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from taiinet.pubsub.query.cover import normalize
from taiinet.pubsub.query.nodes import All, And, Compare, Field, Filter, In, Op, Or, Regex
from taiinet.pubsub.query.parser import regex_source
from taiinet.pubsub.query.values import BOOL, BYTES, NUMBER, STRING, type_class

#: Most clauses kept for one subscription; beyond, the condition is widened.
MAX_CLAUSES = 16


@dataclass(frozen=True, slots=True)
class Eq:
    path: str
    keys: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Bound:
    path: str
    lower: bool
    key: tuple[Any, int]  # (bound, tie-break) -- see tables.BoundList
    cls: int


@dataclass(frozen=True, slots=True)
class Interval:
    """A lower and an upper bound on numbers at one path, both finite."""

    path: str
    low: tuple[Any, int]   # a lower-bound key
    high: tuple[Any, int]  # an upper-bound key


@dataclass(frozen=True, slots=True)
class RegexPred:
    path: str
    source: str  # pattern with inline options


Pred = Eq | Bound | Interval | RegexPred
Clause = tuple[Pred, ...]


def _scalar_key(value: Any) -> Any | None:
    cls = type_class(value)
    if cls in (NUMBER, STRING, BYTES, BOOL):
        return (cls, value)
    return None


def _field_preds(node: Field) -> list[Pred]:
    eqs: list[Pred] = []
    bounds: list[Pred] = []
    for op in node.ops:
        if isinstance(op, Compare):
            if op.op == "eq":
                key = _scalar_key(op.value)
                if key is not None:
                    eqs.append(Eq(node.path, (key,)))
            elif op.op != "ne" and op.value is not None:  # normalize rewrote null ranges
                cls = type_class(op.value)
                incl = op.op in ("gte", "lte")
                if op.op in ("gt", "gte"):
                    bounds.append(Bound(node.path, True, (op.value, 0 if incl else 1), cls))
                else:
                    bounds.append(Bound(node.path, False, (op.value, 1 if incl else 0), cls))
        elif isinstance(op, In) and not op.negate:
            keys = [_scalar_key(v) for v in op.values]
            if all(k is not None for k in keys):
                eqs.append(Eq(node.path, tuple(dict.fromkeys(keys))))  # 1 and 1.0 once
        elif isinstance(op, Regex):
            eqs.append(RegexPred(node.path, regex_source(op.pattern, op.options)))
        elif isinstance(op, All) and op.values:
            for v in op.values:
                key = _scalar_key(v)
                if key is not None:
                    eqs.append(Eq(node.path, (key,)))
    return eqs + bounds


def necessary_clauses(node: Filter) -> list[Clause] | None:
    """Clauses one of which every matching document satisfies; ``None`` when unknown.

    ``[]`` means no document can match (an empty ``$in``).
    """
    if isinstance(node, Field):
        if any(isinstance(op, All) and not op.values for op in node.ops):
            return []
        preds = _field_preds(node)
        if any(isinstance(p, Eq) and not p.keys for p in preds):
            return []
        return [tuple(preds)] if preds else None
    if isinstance(node, And):
        parts = [c for c in (necessary_clauses(k) for k in node.children) if c is not None]
        if not parts:
            return None
        if any(not p for p in parts):
            return []
        result: list[Clause] = [()]
        for part in sorted(parts, key=len):
            if len(result) * len(part) <= MAX_CLAUSES:
                result = [a + b for a in result for b in part]
        return result
    if isinstance(node, Or):
        out: list[Clause] = []
        for kid in node.children:
            sub = necessary_clauses(kid)
            if sub is None:
                return None
            out += sub
        return out if len(out) <= MAX_CLAUSES else None
    return None


def indexed_predicates(clause: Clause) -> Clause:
    """The predicates indexed for a clause: its equalities if any, else its regexes,
    else its bounds, with a finite lower and upper bound on numbers at one path
    paired into an interval."""
    eqs = tuple(p for p in clause if isinstance(p, Eq))
    if eqs:
        return eqs
    regexes = tuple(p for p in clause if isinstance(p, RegexPred))
    if regexes:
        return regexes
    lows: dict[str, tuple[Any, int]] = {}
    highs: dict[str, tuple[Any, int]] = {}
    for p in clause:
        if isinstance(p, Bound) and p.cls == NUMBER and math.isfinite(p.key[0]):
            table = lows if p.lower else highs
            best = table.get(p.path)
            if best is None or (p.key > best if p.lower else p.key < best):
                table[p.path] = p.key
    paired = set(lows) & set(highs)
    out: list[Pred] = [Interval(path, lows[path], highs[path]) for path in sorted(paired)]
    out += [p for p in clause if not (isinstance(p, Bound) and p.cls == NUMBER
                                      and p.path in paired)]
    return tuple(out)


def _exactable(op: Op) -> bool:
    """Operators whose one predicate, hit by a path holding one value, is the operator."""
    if isinstance(op, Compare):
        return op.op != "ne" and _scalar_key(op.value) is not None
    if isinstance(op, In):
        return (not op.negate and bool(op.values)
                and all(_scalar_key(v) is not None for v in op.values))
    return isinstance(op, Regex)


def _covered(pred: Pred, access: Clause) -> bool:
    if pred in access:
        return True
    return isinstance(pred, Bound) and any(
        isinstance(a, Interval) and a.path == pred.path
        and (a.low if pred.lower else a.high) == pred.key for a in access)


def _direct(node: Filter) -> tuple[Clause, Filter | None] | None:
    """A clause of one predicate per exactable conjunct of ``node``, and the residual:
    the conjuncts its indexed predicates do not decide (None when there are none).

    When every indexed path of a document holds one value, the clause is hit
    exactly when those conjuncts hold, so ``node`` matches iff the residual does.
    """
    atoms = node.children if isinstance(node, And) else (node,)
    preds: list[Pred] = []
    owners: list[Filter] = []
    residual: list[Filter] = []
    for atom in atoms:
        if isinstance(atom, Field) and len(atom.ops) == 1 and _exactable(atom.ops[0]):
            (pred,) = _field_preds(atom)
            preds.append(pred)
            owners.append(atom)
        else:
            residual.append(atom)
    if not preds:
        return None
    clause = tuple(preds)
    access = indexed_predicates(clause)
    residual += [atom for pred, atom in zip(preds, owners, strict=True)
                 if not _covered(pred, access)]
    if not residual:
        return clause, None
    return clause, residual[0] if len(residual) == 1 else And(children=tuple(residual))


@dataclass(frozen=True, slots=True)
class PlanEntry:
    clause: Clause
    branch: Filter | None      # the top-level $or branch it stands for; None: the whole query
    direct: bool               # hits decide the indexed conjuncts (see _direct)
    residual: Filter | None    # what remains to check for a direct clause


def plan(node: Filter) -> list[PlanEntry] | None:
    """The clauses to index for a query; ``None`` when it must be checked on every document.

    A top-level ``$or`` is split: each branch gets its own clauses and, when a
    clause is hit, only that branch is checked, not the whole query.  A branch
    (or the whole query) that is a conjunction with exactable conditions gets a
    *direct* clause; otherwise its necessary clauses.
    """
    node = normalize(node)
    is_or = isinstance(node, Or)
    branches = node.children if isinstance(node, Or) else (node,)
    entries: list[PlanEntry] = []
    for branch in branches:
        owner = branch if is_or else None
        direct = _direct(branch)
        if direct is not None and not _prefer_necessary(branch, direct[0]):
            entries.append(PlanEntry(direct[0], owner, True, direct[1]))
            continue
        clauses = necessary_clauses(branch)
        if clauses is None:
            return None
        entries += [PlanEntry(c, owner, False, None) for c in clauses]
    return entries if len(entries) <= MAX_CLAUSES else None


def _prefer_necessary(branch: Filter, clause: Clause) -> bool:
    """A direct clause of bounds only is weak when nested ``$or``s offer equalities."""
    if any(isinstance(p, Eq | RegexPred) for p in indexed_predicates(clause)):
        return False
    atoms = branch.children if isinstance(branch, And) else (branch,)
    if all(isinstance(a, Field) for a in atoms):
        return False
    clauses = necessary_clauses(branch)
    return bool(clauses) and all(any(isinstance(p, Eq | RegexPred) for p in indexed_predicates(c))
                                 for c in clauses or ())
