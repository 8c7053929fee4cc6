"""The committed protobuf modules must be exactly what `make proto` generates."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load_protogen():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("protogen", ROOT / "tools" / "protogen.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["protogen"] = module
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    protogen = _load_protogen()
    written = protogen.generate(tmp_path)
    committed = sorted(p.relative_to(ROOT) for p in (ROOT / "taiinet" / "v1").iterdir()
                       if p.is_file() and p.suffix in {".py", ".pyi"})
    assert sorted(written) == committed, "run `make proto`: generated files differ from proto/"
    for rel in written:
        fresh = (tmp_path / rel).read_text()
        assert (ROOT / rel).read_text() == fresh, f"{rel} is stale: run `make proto`"
