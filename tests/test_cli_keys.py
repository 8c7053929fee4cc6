"""`taiinet keygen` and `taiinet id`."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from taiinet import Identity
from taiinet.cli import main
from taiinet.wire.identity import parse_peer_id


def test_keygen_then_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "node.key"
    assert main(["keygen", str(path)]) == 0
    peer_id = capsys.readouterr().out.strip()
    assert parse_peer_id(peer_id) == peer_id
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Identity.load(path).peer_id == peer_id
    assert main(["id", str(path)]) == 0
    assert capsys.readouterr().out.strip() == peer_id


@pytest.mark.parametrize("argv", [["keygen", "{existing}"], ["keygen", "{missing_dir}/k"],
                                  ["id", "{missing_dir}"], ["id", "{garbage}"]])
def test_bad_paths_give_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            argv: list[str]) -> None:
    existing = tmp_path / "existing"
    existing.write_bytes(b"keep me")
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\xff" * 10)
    names = {"existing": existing, "missing_dir": tmp_path / "nope", "garbage": garbage}
    assert main([part.format(**names) for part in argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith(f"taiinet {argv[0]}: ")
    assert existing.read_bytes() == b"keep me"


def test_real_command_line(tmp_path: Path) -> None:
    """Through the interpreter, as a user runs it: no traceback on a bad path."""
    import subprocess
    import sys

    path = tmp_path / "k"
    made = subprocess.run([sys.executable, "-m", "taiinet.cli", "keygen", str(path)],
                          capture_output=True, text=True, check=True)
    shown = subprocess.run([sys.executable, "-m", "taiinet.cli", "id", str(path)],
                           capture_output=True, text=True, check=True)
    assert made.stdout == shown.stdout
    again = subprocess.run([sys.executable, "-m", "taiinet.cli", "keygen", str(path)],
                           capture_output=True, text=True)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert again.stderr.count("\n") == 1
