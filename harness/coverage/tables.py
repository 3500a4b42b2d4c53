"""Tables of coverage: per file of net/mptcp, lines, functions and branches hit."""

from __future__ import annotations

from harness.coverage.lcov import PROFILED
from harness.coverage.tracefile import FileCoverage


def short_name(source: str) -> str:
    """net/mptcp/protocol.c for the absolute path lcov records."""
    index = source.rfind(PROFILED)
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
