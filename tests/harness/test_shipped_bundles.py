"""The bundles shipped in repros/: each one loads, its patches read as a series, and its C
reproducers compile (as `invoke repro` compiles them, static)."""

import os

import pytest

from harness.kernel.patches import read_series
from harness.paths import PROJECT_ROOT
from harness.repro.bundle import load
from harness.runs.repro import compile_c_steps

SHIPPED = sorted(p.parent for p in (PROJECT_ROOT / "repros").glob("*/repro.toml"))
OPEN_BUGS = {"mptcp-csum-error"}  # bundles of bugs with no fix known (yet): no `fix` to name


def test_there_are_shipped_bundles():
    assert len(SHIPPED) >= 4, SHIPPED


@pytest.mark.parametrize("directory", SHIPPED, ids=lambda p: p.name)
def test_a_shipped_bundle_loads_and_its_parts_are_usable(directory, tmp_path):
    bundle = load(directory)
    assert bundle.origin, "a shipped bundle names its origin"
    assert bundle.fix or directory.name in OPEN_BUGS, "a shipped bundle names its fix"
    if bundle.kernel.patches is not None:
        assert read_series(bundle.kernel.patches), f"{bundle.kernel.patches} has no patch"
    binaries = compile_c_steps(bundle, tmp_path / "bin")
    for path in binaries.values():
        assert os.access(path, os.X_OK), f"{path}: no executable from the C step"
