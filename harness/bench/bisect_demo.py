"""A git tree to bisect: Debian's 6.12 source, then unrelated net/mptcp changes around the
revert of a real fix (a bundle's series), and `invoke bisect` timed over it.

The tree has one base commit (the source as shipped: good) and COMMITS commits on top, the
revert at REVERT_AT; each other commit adds a comment to a different net/mptcp file, so that
every step of the bisection rebuilds something, as a real series of changes would. It is
made once under the cache and reused while its recipe is unchanged.

For `--fixed-by`, a branch FIXED_BRANCH of the same tree goes on from the last commit: the
fix again (the revert reverted), then one more unrelated change. Bisecting from the revert
(broken) to the branch's end (fixed) must name the commit that brought the fix back.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from harness.kernel import patch_input, source
from harness.repro.bundle import Bundle
from harness.run import run

COMMITS = 8
REVERT_AT = 5  # 1-based position of the revert among the commits
UNRELATED = ("ctrl.c", "diag.c", "fastopen.c", "mib.c", "sched.c", "token.c", "syncookies.c",
             "mptcp_diag.c", "bpf.c")
FIXED_BRANCH = "mlab-fixed-by"
AFTER_THE_FIX = "bpf.c"  # the unrelated change after the fix on FIXED_BRANCH
GIT = ["git", "-c", "user.name=mptcp-lab", "-c", "user.email=mptcp-lab@localhost",
       "-c", "commit.gpgsign=false"]
GIT_TIMEOUT = 900.0


@dataclass(frozen=True)
class DemoTree:
    path: Path
    good: str  # the base commit
    bad: str  # the last commit
    revert: str  # the commit that brings the bug back (the first, for a series of several)
    revert_last: str  # the last commit of the revert (one per patch of the bundle's series)


@dataclass(frozen=True)
class FixedBranch:
    fix: str  # the commit that brings the fix back
    end: str  # the branch's last commit (fixed)


def _git(tree: Path, *args: str, timeout: float = GIT_TIMEOUT) -> str:
    return run([*GIT, "-C", str(tree), *args], timeout=timeout).stdout.strip()


def recipe(bundle: Bundle, base: source.Source, cache: Path) -> str:
    patches = patch_input.read_patches(bundle.kernel.patches, cache / "patches")
    text = base.id + "".join(p.sha256 for p in patches) + f"{COMMITS}/{REVERT_AT}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def make(bundle: Bundle, cache: Path) -> DemoTree:
    """The demo tree for this bundle's revert (made once, then reused)."""
    if bundle.kernel.patches is None:
        raise ValueError(f"bundle {bundle.name} has no patches: nothing to bisect to")
    base = source.debian(cache)
    tree = cache / "bisect-demo" / recipe(bundle, base, cache)
    if not (tree / ".git" / "mlab-demo-done").exists():
        shutil.rmtree(tree, ignore_errors=True)
        _build(tree, base.base, bundle)
    commits = _git(tree, "rev-list", "--reverse", "HEAD").split()
    reverts = len(commits) - COMMITS  # the base, and every position but REVERT_AT: one each
    return DemoTree(tree, commits[0], commits[-1], commits[REVERT_AT],
                    commits[REVERT_AT + reverts - 1])


def fixed_branch(demo: DemoTree) -> FixedBranch:
    """FIXED_BRANCH of the demo tree (made once): the fix again, then an unrelated change.
    The tree's own branch and files are as before once it is made."""
    done = demo.path / ".git" / "mlab-fixed-by-done"
    if not done.exists():
        run([*GIT, "-C", str(demo.path), "branch", "--quiet", "-D", FIXED_BRANCH], check=False)
        _git(demo.path, "checkout", "--quiet", "-b", FIXED_BRANCH)
        try:
            _git(demo.path, "revert", "--no-commit", f"{demo.revert}~1..{demo.revert_last}")
            _git(demo.path, "commit", "--quiet", "-m",
                 "mptcp: the fix again (reverts the demo's revert)")
            with (demo.path / "net" / "mptcp" / AFTER_THE_FIX).open("a") as f:
                f.write("/* mptcp-lab bisect demo: an unrelated change after the fix */\n")
            _git(demo.path, "commit", "--quiet", "-am",
                 f"mptcp: {AFTER_THE_FIX}: unrelated change after the fix")
            done.write_text("")
        finally:
            run([*GIT, "-C", str(demo.path), "reset", "--quiet", "--hard"], check=False)
            _git(demo.path, "checkout", "--quiet", "-")
    commits = _git(demo.path, "rev-list", "--reverse", f"{demo.bad}..{FIXED_BRANCH}").split()
    return FixedBranch(commits[0], commits[-1])


def _build(tree: Path, pristine: Path, bundle: Bundle) -> None:
    tree.parent.mkdir(parents=True, exist_ok=True)
    run(["cp", "-a", str(pristine), str(tree)], timeout=GIT_TIMEOUT)
    _git(tree, "init", "--quiet")
    _git(tree, "add", "--force", ".")  # Debian's tarball ignores its whole top level
    _git(tree, "commit", "--quiet", "-m", f"{source.DEBIAN_PACKAGE} as shipped")
    patches = patch_input.read_patches(bundle.kernel.patches, tree.parent / "pieces")
    unrelated = iter(UNRELATED)
    for position in range(1, COMMITS + 1):
        if position == REVERT_AT:
            for patch in patches:
                _git(tree, "am", "--quiet", str(patch.path))
            continue
        name = next(unrelated)
        path = tree / "net" / "mptcp" / name
        with path.open("a") as f:
            f.write(f"/* mptcp-lab bisect demo: an unrelated change ({position}) */\n")
        _git(tree, "commit", "--quiet", "-am", f"mptcp: {name}: unrelated change {position}")
    (tree / ".git" / "mlab-demo-done").write_text("")


def measure_fixed_by(bundle: Bundle, cache: Path, runs: int) -> list[str]:
    """`invoke bisect --fixed-by` on the demo tree, from the revert (broken) to the end of
    FIXED_BRANCH (fixed); lines of the report."""
    from harness.runs import bisect as bisect_run

    demo = make(bundle, cache)
    branch = fixed_branch(demo)
    request = bisect_run.BisectRequest(bundle, cache, demo.path, good=branch.end,
                                       bad=demo.revert, runs=runs, fixed_by=True)
    result = bisect_run.bisect(request)
    verdict = "names the fix" if result.found == branch.fix else \
        f"WRONG: expected {branch.fix[:12]}"
    return [f"demo tree {demo.path}: {FIXED_BRANCH} brings the fix back at {branch.fix[:12]}",
            result.table(), result.headline(),
            f"bisect --fixed-by {verdict}; {len(result.steps)} kernels in "
            f"{result.total_s / 60:.1f} min"]


def measure(bundle: Bundle, cache: Path, runs: int) -> list[str]:
    """Bisect the demo tree with the bundle; lines of the report (steps, times, result)."""
    from harness.runs import bisect as bisect_run

    start = time.monotonic()
    demo = make(bundle, cache)
    made = time.monotonic() - start
    request = bisect_run.BisectRequest(bundle, cache, demo.path, demo.good, demo.bad, runs)
    result = bisect_run.bisect(request)
    verdict = "names the revert" if result.found == demo.revert else \
        f"WRONG: expected {demo.revert[:12]}"
    return [f"demo tree {demo.path} ({COMMITS} commits, revert at {REVERT_AT}) "
            f"ready in {made:.0f} s", result.table(), result.headline(),
            f"bisect {verdict}; {len(result.steps)} kernels in {result.total_s / 60:.1f} min"]
