# taiinet: sans-io core
"""``quick_init``: a cheaper ``__init__`` for the frozen dataclasses made per document.

A frozen dataclass refuses ``setattr``, so the ``__init__`` that ``dataclass``
writes sets every field with ``object.__setattr__(self, name, value)``: a
lookup of ``__setattr__``, then of the name's slot, per field.  A few such
classes are made for every document a node receives (the ``Gossip`` read and
the one forwarded, a ``Send`` per push, the ``Deliver`` and the node's
``Message``), ~1 us each.  With slots, each field is a member descriptor;
calling its ``__set__`` stores the value directly, which is what
``object.__setattr__`` ends in.  ``quick_init`` writes an ``__init__`` that does
that and nothing else differently: the same keyword-only parameters, defaults
and default factories, then ``__post_init__`` if the class has one.  The
class stays a frozen dataclass (``fields``, ``replace``, equality, hashing,
``FrozenInstanceError`` on assignment).

``quick_new(cls)`` is the same ``__init__`` as a function that makes the
object too: calling a class with keyword arguments costs a dict more than
calling a function with them, so the sites that make one per document use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar, cast

from taiinet.errors import LocalProtocolError

T = TypeVar("T")

#: Stands for "not given" where a field has a default factory.
_FACTORY = object()


def quick_init(cls: type[T]) -> type[T]:
    """Give ``cls`` (a frozen, slotted dataclass whose fields are all keyword-only
    ``__init__`` parameters) the ``__init__`` described in the module docstring;
    ``LocalProtocolError`` for any other class."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise LocalProtocolError(f"{cls.__name__} is not a frozen, slotted dataclass")
    namespace: dict[str, Any] = {"_FACTORY": _FACTORY}
    parameters: list[str] = []
    body: list[str] = []
    for index, field in enumerate(dataclasses.fields(cls)):  # type: ignore[arg-type]
        if not field.init or not field.kw_only:
            raise LocalProtocolError(f"{cls.__name__}.{field.name} is not a keyword-only "
                                     "__init__ parameter")
        name = field.name
        namespace[f"_set_{index}"] = cls.__dict__[name].__set__
        if field.default is not dataclasses.MISSING:
            namespace[f"_default_{index}"] = field.default
            parameters.append(f"{name}=_default_{index}")
        elif field.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{index}"] = field.default_factory
            parameters.append(f"{name}=_FACTORY")
            body.append(f"if {name} is _FACTORY: {name} = _factory_{index}()")
        else:
            parameters.append(name)
        body.append(f"_set_{index}(self, {name})")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    star = "*, " if parameters else ""
    source = (f"def __init__(self, {star}{', '.join(parameters)}) -> None:\n"
              + "".join(f"    {line}\n" for line in body or ["pass"])
              + f"def __quick_new__({star}{', '.join(parameters)}):\n"
              + "    self = _new(_cls)\n"
              + "".join(f"    {line}\n" for line in body)
              + "    return self\n")
    namespace["_new"], namespace["_cls"] = object.__new__, cls
    exec(source, namespace)
    init, make = namespace["__init__"], namespace["__quick_new__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    make.__qualname__ = f"{cls.__qualname__}.__quick_new__"
    init.__module__ = make.__module__ = cls.__module__
    setattr(cls, "__init__", init)  # noqa: B010 (a class attribute, as dataclasses sets it)
    setattr(cls, "__quick_new__", staticmethod(make))  # noqa: B010
    return cls


def quick_new(cls: type[T]) -> Callable[..., T]:
    """A function that makes a ``cls`` (a ``quick_init`` class) from the same keyword
    arguments as ``cls(...)``, with the same defaults, factories and ``__post_init__``.

    Calling a class with keyword arguments costs more than calling a function
    with them (CPython 3.11 packs them in a dict for ``type.__call__``, then
    unpacks them for ``__init__``: ~0.25 us for a ``Message``); the few sites
    that make one object per document call this instead.
    """
    make = cls.__dict__.get("__quick_new__")
    if make is None:
        raise LocalProtocolError(f"{cls.__name__} has no quick_init")
    return cast("Callable[..., T]", make.__func__)
