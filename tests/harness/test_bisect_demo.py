"""The --fixed-by branch of the bisect demo tree, on a small git tree laid out like it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.bench import bisect_demo
from harness.bench.bisect_demo import GIT, DemoTree


def git(tree: Path, *args: str) -> str:
    return subprocess.run([*GIT, "-C", str(tree), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def small_demo(tree: Path) -> DemoTree:
    """A base, a two-commit revert (as a series of two patches would give), one more."""
    mptcp = tree / "net" / "mptcp"
    mptcp.mkdir(parents=True)
    for name, text in (("pm.c", "fixed\n"), ("subflow.c", "fixed\n"), ("bpf.c", "")):
        (mptcp / name).write_text(text)
    git(tree, "init", "--quiet", "--initial-branch", "main")
    git(tree, "add", ".")
    git(tree, "commit", "--quiet", "-m", "base")
    for name in ("pm.c", "subflow.c"):
        (mptcp / name).write_text("buggy\n")
        git(tree, "commit", "--quiet", "-am", f"Revert the fix in {name}")
    (mptcp / "token.c").write_text("unrelated\n")
    git(tree, "add", ".")
    git(tree, "commit", "--quiet", "-m", "unrelated")
    commits = git(tree, "rev-list", "--reverse", "HEAD").split()
    return DemoTree(tree, commits[0], commits[-1], commits[1], commits[2])


def test_the_fixed_by_branch_brings_the_fix_back_then_changes_something_else(tmp_path):
    demo = small_demo(tmp_path / "tree")
    branch = bisect_demo.fixed_branch(demo)

    mptcp = "net/mptcp"
    assert git(demo.path, "show", f"{branch.fix}:{mptcp}/pm.c") == "fixed"
    assert git(demo.path, "show", f"{branch.fix}:{mptcp}/subflow.c") == "fixed"
    assert git(demo.path, "rev-parse", f"{branch.fix}~1") == demo.bad
    assert git(demo.path, "diff", "--name-only", branch.fix, branch.end) == f"{mptcp}/bpf.c"
    # the tree is back on its own branch, unchanged
    assert git(demo.path, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert (demo.path / mptcp / "pm.c").read_text() == "buggy\n"
    assert git(demo.path, "status", "--porcelain") == ""
    assert bisect_demo.fixed_branch(demo) == branch  # made once
