"""Lazy re-exports for package ``__init__``\\ s (PEP 562 module ``__getattr__``).

``import taiinet`` must not pay for aiortc, trio and every layer: a package
names what it re-exports and from which module, and that module is imported
the first time the name is looked up (the value is then cached in the
package).  Type checkers read the same names from an ``if TYPE_CHECKING:``
block of imports (a test checks the two agree).  Fifteen lines did not justify
a dependency (``lazy_loader`` wants a ``.pyi`` stub per package as well).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, which re-exports each
    ``name`` of ``exports`` from the module ``exports[name]``."""

    def __getattr__(name: str) -> Any:
        source = exports.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
