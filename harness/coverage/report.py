"""A coverage report of net/mptcp from the counters of a run.

`write()` turns the parts a run collected (one directory of `.gcda` files per test or
selftest slot) into `reports/coverage-<time>/`: `coverage.info` (every part under its own
test name), `html/` (genhtml, with the tests that ran each line) and `summary.txt`,
the per-file table printed at the end of the run.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from harness import evidence
from harness.coverage import changes, lcov, tracefile
from harness.coverage.errors import CoverageError
from harness.coverage.tables import summary_table
from harness.kernel import kconfig
from harness.paths import REPORTS_DIR

GCOV_OPTIONS = ("CONFIG_GCOV_KERNEL", "CONFIG_DEBUG_FS")
SUMMARY = "summary.txt"


def require_gcov(build_dir: Path | None) -> None:
    """Refuse a coverage run on a kernel that has no gcov counters to read."""
    lacking = list(GCOV_OPTIONS) if build_dir is None else \
        kconfig.options_lacking(build_dir, GCOV_OPTIONS)
    if lacking:
        raise CoverageError(f"--coverage needs a kernel built with {', '.join(lacking)}: "
                            "invoke build --variant coverage (then boot it)")


@dataclass(frozen=True)
class Report:
    directory: Path
    tracefile: Path
    index: Path
    summary: str


def write(counters: Path, build_dir: Path, title: str, reports: Path = REPORTS_DIR) -> Report:
    """Capture every part under `counters`, merge, render into reports/coverage-<time>/."""
    parts = sorted(p for p in counters.iterdir() if p.is_dir() and any(p.rglob("*.gcda")))
    if not parts:
        raise CoverageError(f"no gcov counters were collected in {counters}")
    target = evidence.run_directory_for("coverage-", reports)
    target.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="mlab-lcov-") as scratch:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            infos = list(pool.map(lambda part: lcov.capture(
                part, build_dir, lcov.test_name(part.name), Path(scratch) / f"{part.name}.info"),
                parts))
        # one tracefile: each part in it under its own test name
        merged = lcov.merge(infos, target / lcov.MERGED)
    return _render(merged, target, title)


def combine(reports: list[Path], title: str, root: Path = REPORTS_DIR) -> Report:
    """One report of several, made by runs apart (tests/mptcp in one, the selftests in
    another) on the same kernel tree: every part under its test name (a name in two reports
    is summed). Reports of different trees are refused: their files would not line up."""
    tracefiles = [tracefile_of(r) for r in reports]
    trees = {r: changes.tree_of(tracefile.union(tracefile.read(t)))
             for r, t in zip(reports, tracefiles, strict=True)}
    if len(set(trees.values())) > 1:
        raise CoverageError("reports of different kernel trees cannot be merged: " + "; ".join(
            f"{report}: {tree}" for report, tree in trees.items()))
    target = evidence.run_directory_for("coverage-", root)
    target.mkdir(parents=True)
    return _render(lcov.merge(tracefiles, target / lcov.MERGED), target, title)


def _render(merged: Path, target: Path, title: str) -> Report:
    """The HTML and the summary table of a merged tracefile, beside it."""
    index = lcov.html(merged, target / lcov.HTML, title)
    summary = summary_table(tracefile.union(tracefile.read(merged)))
    (target / SUMMARY).write_text(summary + "\n")
    return Report(target, merged, index, summary)


def tracefile_of(path: Path) -> Path:
    """The merged tracefile of a report directory, or the tracefile given itself."""
    candidate = path / lcov.MERGED if path.is_dir() else path
    if not candidate.is_file():
        raise CoverageError(f"{path}: not a coverage report (no {lcov.MERGED}) nor a tracefile")
    return candidate
