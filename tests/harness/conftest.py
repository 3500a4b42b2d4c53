"""Fixtures shared by the harness unit tests."""

import os
import shutil
from pathlib import Path

import pytest

KERNEL_DATA = Path(__file__).parent / "data" / "kernel"


def pids_named(name: str) -> set[int]:
    """The processes of the machine whose command name is name."""
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "comm").read_text().strip() == name:
                found.add(int(proc.name))
        except OSError:
            continue
    return found


@pytest.fixture
def processes_named():
    """processes_named(name) -> the pids of the processes of that command name."""
    return pids_named


@pytest.fixture
def fake_make(tmp_path, monkeypatch):
    """`make` on PATH is tests/harness/data/kernel/fake-make (a stand-in for Kbuild)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(KERNEL_DATA / "fake-make", bin_dir / "make")
    (bin_dir / "make").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("FAKE_MAKE_DROP", raising=False)
    monkeypatch.delenv("FAKE_MAKE_FAIL", raising=False)
