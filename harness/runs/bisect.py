"""`invoke bisect BUNDLE --tree T --good G --bad B`: the commit that introduced a bug.

`git bisect` runs in the cache's clone of the user's tree (harness.kernel.worktree: the
user's tree is never written to), with the bundle as the test: each step builds the
checked-out revision incrementally (one build directory for the clone, ccache), boots it
and runs the bundle up to N times: reproduced -> bad, not reproduced in N runs -> good, a
build failure -> skip. Before bisecting, `good` must not reproduce and `bad` must: if either
does not hold, it stops there with the evidence. With `fixed_by`, the same engine looks for
the commit that fixed the bug: `bad` is an older revision that reproduces, `good` a newer
one that does not, and the first good commit is reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.errors import HarnessError
from harness.kernel import build as kernel_build
from harness.kernel import worktree
from harness.kernel.errors import KernelError
from harness.repro.bundle import Bundle
from harness.run import run
from harness.runs.repro import REPORTS, ReproOptions, compile_c_steps, run_on_kernel

FIRST = "is the first"  # git bisect's "<sha> is the first bad commit" (or the new term)


class BisectError(HarnessError):
    pass


@dataclass
class Step:
    commit: str
    subject: str
    role: str  # "good", "bad" (the endpoint checks) or "step"
    build_s: float = 0.0
    runs_s: float = 0.0
    reproduced: int | None = None  # None: not run (the build failed)
    runs: int = 0
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.reproduced is None:
            return f"skip ({self.note})"
        return f"{'reproduced' if self.reproduced else 'not reproduced'} " \
               f"{self.reproduced}/{self.runs}"

    def row(self) -> str:
        return (f"| {self.commit[:12]} | {self.role} | {self.subject[:60]} | "
                f"{self.build_s:.0f} s | {self.runs_s:.0f} s | {self.verdict} |")


@dataclass
class BisectResult:
    bundle: str
    fixed_by: bool
    steps: list[Step] = field(default_factory=list)
    found: str | None = None  # the commit
    found_subject: str = ""
    found_files: list[str] = field(default_factory=list)
    stopped: str = ""  # why it stopped before bisecting
    total_s: float = 0.0

    def table(self) -> str:
        head = ["| commit | role | subject | build | runs | verdict |",
                "|---|---|---|---|---|---|"]
        return "\n".join(head + [s.row() for s in self.steps])

    def headline(self) -> str:
        what = "first fixed commit" if self.fixed_by else "first bad commit"
        if self.found:
            return (f"{self.bundle}: {what}: {self.found[:12]} (\"{self.found_subject}\") "
                    f"touching {', '.join(self.found_files)}; {len(self.steps)} kernels "
                    f"tested in {self.total_s / 60:.1f} min")
        return f"{self.bundle}: no {what}: {self.stopped}"


@dataclass(frozen=True)
class BisectRequest:
    bundle: Bundle
    cache: Path
    tree: Path
    good: str
    bad: str
    runs: int
    fixed_by: bool = False
    variant: str | None = None


class Bisector:
    def __init__(self, request: BisectRequest):
        self.request = request
        self.clone: Path | None = None
        self.tested = 0
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.report_dir = REPORTS / f"bisect-{request.bundle.name}-{stamp}"
        self.report_dir.mkdir(parents=True, exist_ok=True)
        self.binaries = compile_c_steps(request.bundle, self.report_dir / "bin")

    def test(self, commit: str, role: str) -> Step:
        """Build `commit` and run the bundle on it (stopping at the first reproduction)."""
        tree = self.request.tree
        step = Step(commit, worktree.subject(tree, commit), role)
        self.clone = worktree.checkout(tree, commit, self.request.cache)
        kernel = replace(self.request.bundle.kernel, patches=None)
        build_request = kernel_build.BuildRequest(
            cache=self.request.cache, tree=str(self.clone), no_patches=True,
            variant=self.request.variant or kernel.variant, config_items=kernel.config,
            purpose="bisect")
        start = time.monotonic()
        try:
            built = kernel_build.build(build_request)
        except KernelError as err:
            step.build_s, step.note = time.monotonic() - start, "build failed"
            print(f"bisect: {commit[:12]}: build failed: {str(err).splitlines()[0]}")
            return step
        step.build_s = time.monotonic() - start
        options = ReproOptions(runs=self.request.runs, until_reproduced=True, quiet=True)
        self.tested += 1
        report = self.report_dir / f"{self.tested:02d}-{commit[:12]}"
        report.mkdir()
        start = time.monotonic()
        verdict = run_on_kernel(self.request.bundle, build_request, built, self.request.cache,
                                options, report, self.binaries)
        step.runs_s = time.monotonic() - start
        step.reproduced, step.runs = len(verdict.reproduced), len(verdict.runs)
        print(f"bisect: {commit[:12]} {step.subject[:50]!r}: {step.verdict} "
              f"(build {step.build_s:.0f} s, runs {step.runs_s:.0f} s)", flush=True)
        return step

    def git(self, *args: str) -> str:
        return run(["git", "-C", str(self.clone), *args], timeout=120).stdout


def bisect(request: BisectRequest) -> BisectResult:
    tree = request.tree
    worktree.git_dir_of(tree)
    good, bad = worktree.resolve(tree, request.good), worktree.resolve(tree, request.bad)
    result = BisectResult(request.bundle.name, request.fixed_by)
    bisector = Bisector(request)
    start = time.monotonic()
    try:
        if _endpoints_hold(bisector, result, good, bad):
            _run_git_bisect(bisector, result, good, bad)
    finally:
        if bisector.clone is not None:
            run(["git", "-C", str(bisector.clone), "bisect", "reset", "--quiet"], check=False)
        result.total_s = time.monotonic() - start
        (bisector.report_dir / "summary.md").write_text(
            f"# {result.headline()}\n\n{result.table()}\n")
    return result


def _endpoints_hold(bisector: Bisector, result: BisectResult, good: str, bad: str) -> bool:
    bad_step = bisector.test(bad, "bad")
    result.steps.append(bad_step)
    if not bad_step.reproduced:
        result.stopped = (f"--bad {bad[:12]} does not reproduce ({bad_step.verdict}); "
                          f"evidence in {bisector.report_dir}")
        return False
    good_step = bisector.test(good, "good")
    result.steps.append(good_step)
    if good_step.reproduced is None or good_step.reproduced:
        result.stopped = (f"--good {good[:12]} reproduces or does not build "
                          f"({good_step.verdict}); evidence in {bisector.report_dir}")
        return False
    return True


def _run_git_bisect(bisector: Bisector, result: BisectResult, good: str, bad: str) -> None:
    """Drive `git bisect` one step at a time (so each step's times are ours to report)."""
    if bisector.request.fixed_by:  # old revisions reproduce, new ones do not
        terms, reproduced_term, clean_term = ["--term-old=broken", "--term-new=fixed"], \
            "broken", "fixed"
        start_args = [good, bad]  # new (fixed), then old (broken)
    else:
        terms, reproduced_term, clean_term = [], "bad", "good"
        start_args = [bad, good]
    out = bisector.git("bisect", "start", *terms, *start_args)
    while FIRST not in out:
        commit = bisector.git("rev-parse", "HEAD").strip()
        step = bisector.test(commit, "step")
        result.steps.append(step)
        term = "skip" if step.reproduced is None else \
            reproduced_term if step.reproduced else clean_term
        out = bisector.git("bisect", term)
        if "only skipped commits left" in out:
            result.stopped = "only commits that do not build are left:\n" + out
            return
    result.found = out.split()[0]
    result.found_subject = worktree.subject(bisector.request.tree, result.found)
    result.found_files = bisector.git("show", "--format=", "--name-only",
                                      result.found).split()
