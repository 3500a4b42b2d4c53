"""Fixtures shared by the harness unit tests."""

import os
import shutil
from pathlib import Path

import pytest

KERNEL_DATA = Path(__file__).parent / "data" / "kernel"


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
