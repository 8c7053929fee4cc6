"""A fresh copy of a module loaded while one of its imports is missing."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest


def load_copy_without(monkeypatch: pytest.MonkeyPatch, module: ModuleType, missing: str,
                      name: str) -> ModuleType:
    """``module`` loaded afresh as ``name`` while importing ``missing`` raises
    ImportError (a private module a library may drop); ``module`` itself is left alone."""
    monkeypatch.setitem(sys.modules, missing, None)  # importing it raises ImportError
    spec = importlib.util.spec_from_file_location(name, module.__file__)
    assert spec is not None and spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, copy)  # dataclasses look it up
    spec.loader.exec_module(copy)
    return copy
