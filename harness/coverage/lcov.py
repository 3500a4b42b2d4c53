"""lcov on the counters a run collected: one tracefile per part, merged, and an HTML report.

The guest copied each part's `.gcda` files (harness.coverage.guest) to `<part>/net/mptcp/`;
lcov wants each beside the `.gcno` the compiler wrote in the build directory, so a link to
it is made there first. Each part is captured under its own test name (lcov allows letters,
digits and `_` in one), the parts are merged into one tracefile, and genhtml's
`--show-details` lists, for every line, the tests that ran it.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.run import run

LCOV_TIMEOUT = 600.0
BRANCHES = ("--rc", "lcov_branch_coverage=1")
MERGED = "coverage.info"
PROFILED = "net/mptcp/"
HTML = "html"


def test_name(part: str) -> str:
    """An lcov test name for a part of a run (its directory name)."""
    return re.sub(r"\W", "_", part)


def link_notes(counters: Path, build_dir: Path) -> None:
    """Put a link to the build's .gcno beside each collected .gcda."""
    for gcda in counters.rglob("*.gcda"):
        notes = build_dir / gcda.relative_to(counters).with_suffix(".gcno")
        link = gcda.with_suffix(".gcno")
        if notes.exists() and not link.exists():
            link.symlink_to(notes)


def capture(counters: Path, build_dir: Path, name: str, output: Path) -> Path:
    """The tracefile of one part's counters, under test name `name`."""
    link_notes(counters, build_dir)
    run(["lcov", "--quiet", "--capture", "--directory", str(counters),
         "--base-directory", str(build_dir), "--test-name", name, *BRANCHES,
         # inline functions of kernel headers are compiled into the profiled objects too:
         # the report is of net/mptcp's own sources (and headers)
         "--include", f"*/{PROFILED}*",
         "--output-file", str(output)], timeout=LCOV_TIMEOUT)
    return output


def merge(tracefiles: list[Path], output: Path) -> Path:
    argv = ["lcov", "--quiet", *BRANCHES]
    for tracefile in tracefiles:
        argv += ["--add-tracefile", str(tracefile)]
    run([*argv, "--output-file", str(output)], timeout=LCOV_TIMEOUT)
    return output


def html(tracefile: Path, directory: Path, title: str) -> Path:
    run(["genhtml", "--quiet", "--branch-coverage", "--show-details", "--legend",
         "--title", title, "--output-directory", str(directory), str(tracefile)],
        timeout=LCOV_TIMEOUT)
    return directory / "index.html"
