"""A coverage report of net/mptcp from the counters of a run, and what two of them differ in.

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
from harness.coverage import lcov, tracefile
from harness.coverage.tracefile import FileCoverage
from harness.errors import HarnessError
from harness.kernel import kconfig
from harness.paths import REPORTS_DIR

GCOV_OPTIONS = ("CONFIG_GCOV_KERNEL", "CONFIG_DEBUG_FS")
SUMMARY = "summary.txt"


class CoverageError(HarnessError):
    pass


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


def short_name(source: str) -> str:
    """net/mptcp/protocol.c for the absolute path lcov records."""
    index = source.rfind(lcov.PROFILED)
    return source[index:] if index >= 0 else source


def percent(hit: int, found: int) -> str:
    return f"{100.0 * hit / found:5.1f}%" if found else "    -"


def summary_table(files: dict[str, FileCoverage]) -> str:
    """Lines, functions and branches hit per file, and in total."""
    rows = [("file", "lines", "", "functions", "", "branches", "")]
    totals = [0] * 6
    for source in sorted(files, key=short_name):
        coverage = files[source]
        counts = (len(coverage.hit_lines()), len(coverage.lines),
                  len(coverage.hit_functions()), len(coverage.functions),
                  len(coverage.hit_branches()), len(coverage.branches))
        totals = [t + c for t, c in zip(totals, counts, strict=True)]
        rows.append(_row(short_name(source), counts))
    rows.append(_row("total", totals))
    return aligned_table(rows)


def kinds_table(by_kind: dict[str, dict[str, FileCoverage]]) -> str:
    """Lines and functions hit per file, a column per kind of test (each a union)."""
    files = sorted({source for files in by_kind.values() for source in files}, key=short_name)
    rows = [("file", *(f"{kind}: lines / functions" for kind in by_kind))]
    empty = FileCoverage()
    for name, chosen in [(short_name(s), [s]) for s in files] + [("total", files)]:
        cells = []
        for kind_files in by_kind.values():
            parts = [kind_files.get(source, empty) for source in chosen]
            lines = (sum(len(p.hit_lines()) for p in parts), sum(len(p.lines) for p in parts))
            functions = (sum(len(p.hit_functions()) for p in parts),
                         sum(len(p.functions) for p in parts))
            cells.append(f"{percent(*lines).strip()} / {percent(*functions).strip()}")
        rows.append((name, *cells))
    return aligned_table(rows)


def aligned_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(_aligned(row, widths) for row in rows)


def _aligned(row: tuple[str, ...], widths: list[int]) -> str:
    """The file name left-aligned, the numbers right-aligned."""
    cells = [row[0].ljust(widths[0])]
    cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
    return "  ".join(cells).rstrip()


def _row(name: str, counts) -> tuple[str, ...]:
    lh, lf, fh, ff, bh, bf = counts
    return (name, f"{lh}/{lf}", percent(lh, lf), f"{fh}/{ff}", percent(fh, ff),
            f"{bh}/{bf}", percent(bh, bf))


@dataclass(frozen=True)
class Difference:
    gained_lines: dict[str, list[int]]  # file -> lines covered by B only
    lost_lines: dict[str, list[int]]  # file -> lines covered by A only
    gained_functions: dict[str, list[str]]
    lost_functions: dict[str, list[str]]


def difference(a: dict[str, FileCoverage], b: dict[str, FileCoverage]) -> Difference:
    """What B covers that A does not (gained) and the reverse (lost), per file."""
    gained_lines, lost_lines, gained_functions, lost_functions = {}, {}, {}, {}
    empty = FileCoverage()
    for source in sorted(set(a) | set(b), key=short_name):
        before, after = a.get(source, empty), b.get(source, empty)
        name = short_name(source)
        for found, key_a, key_b in ((gained_lines, after.hit_lines(), before.hit_lines()),
                                    (lost_lines, before.hit_lines(), after.hit_lines()),
                                    (gained_functions, after.hit_functions(),
                                     before.hit_functions()),
                                    (lost_functions, before.hit_functions(),
                                     after.hit_functions())):
            if only := sorted(key_a - key_b):
                found[name] = only
    return Difference(gained_lines, lost_lines, gained_functions, lost_functions)


def difference_text(diff: Difference, a_name: str, b_name: str) -> str:
    return "\n".join((
        covered_only_text(f"covered by {b_name} and not by {a_name}", diff.gained_lines,
                          diff.gained_functions),
        covered_only_text(f"covered by {a_name} and not by {b_name}", diff.lost_lines,
                          diff.lost_functions)))


def covered_only_text(title: str, by_line: dict[str, list[int]],
                      by_function: dict[str, list[str]]) -> str:
    """Lines and functions one side alone covers: counts, then per file."""
    lines = [f"{title}: {sum(map(len, by_line.values()))} lines, "
             f"{sum(map(len, by_function.values()))} functions"]
    for name in sorted(set(by_line) | set(by_function)):
        functions = by_function.get(name, [])
        lines.append(f"  {name}: {len(by_line.get(name, []))} lines"
                     + (f"; functions: {', '.join(functions)}" if functions else ""))
    return "\n".join(lines)
