"""Coverage of a change: the lines a patch series (or commits) added or modified in
net/mptcp, and which of them a report saw run.

The change is what `diff` (against an unpatched tree: by default the pristine copy beside
our patched Debian source) or `git diff` (against a revision of the tree) shows under
net/mptcp, taken as the new side's line numbers. Of those lines, the ones gcov
instruments are the ones that can be reached; comments, declarations and blank lines are
not counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.coverage.errors import CoverageError
from harness.coverage.lcov import PROFILED
from harness.coverage.tables import short_name
from harness.coverage.tracefile import FileCoverage
from harness.run import run

HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")
DIFF_TIMEOUT = 120.0
PRISTINE = "pristine"  # beside the patched working copy of Debian's source (kernel.source)


def tree_of(files: dict[str, FileCoverage]) -> Path:
    """The source tree the report's files are in (the part before net/mptcp/)."""
    for source in files:
        index = source.rfind(f"/{PROFILED}")
        if index > 0:
            return Path(source[:index])
    raise CoverageError(f"the report has no file under {PROFILED}")


def default_base(tree: Path) -> Path:
    base = tree.parent / PRISTINE
    if not base.is_dir():
        raise CoverageError(f"{tree} has no unpatched copy beside it: say what the change is "
                            "against with --base (a tree, or a git revision of this tree)")
    return base


def diff_argv(tree: Path, base: str) -> list[str]:
    if Path(base).is_dir():
        return ["diff", "-rN", "-U0", str(Path(base) / PROFILED), str(tree / PROFILED)]
    return ["git", "-C", str(tree), "diff", "-U0", base, "--", PROFILED]


def changed_lines(tree: Path, base: str) -> dict[str, set[int]]:
    """net/mptcp/FILE -> the lines of FILE (as it is in tree) the change added or modified."""
    result = run(diff_argv(tree, base), timeout=DIFF_TIMEOUT, check=False)
    if result.returncode not in (0, 1):  # diff: 1 when the trees differ; git diff: 0
        raise CoverageError(f"cannot tell the change against {base}: "
                            f"{(result.stderr or result.stdout).strip()}")
    return parse_unified(result.stdout)


def parse_unified(text: str) -> dict[str, set[int]]:
    changed: dict[str, set[int]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("+++ "):
            path = line[4:].split("\t")[0]
            current = None if path == "/dev/null" else short_name(path)
        elif current and (match := HUNK.match(line)):
            start, count = int(match[1]), int(match[2] if match[2] is not None else 1)
            changed.setdefault(current, set()).update(range(start, start + count))
    return {name: lines for name, lines in changed.items() if lines}


@dataclass(frozen=True)
class FileChange:
    name: str
    changed: int  # lines added or modified
    instrumented: list[int]  # of those, the lines gcov counts
    reached: list[int]

    @property
    def unreached(self) -> list[int]:
        return sorted(set(self.instrumented) - set(self.reached))


def change_coverage(files: dict[str, FileCoverage], changed: dict[str, set[int]]
                    ) -> list[FileChange]:
    by_name = {short_name(source): coverage for source, coverage in files.items()}
    rows = []
    for name in sorted(changed):
        coverage = by_name.get(name, FileCoverage())
        instrumented = sorted(changed[name] & coverage.lines.keys())
        rows.append(FileChange(name, len(changed[name]), instrumented,
                               [line for line in instrumented if coverage.lines[line]]))
    return rows


def ranges(lines: list[int]) -> str:
    """12-14, 40 for [12, 13, 14, 40]."""
    parts, start = [], None
    for index, line in enumerate(lines):
        if start is None:
            start = line
        if index + 1 == len(lines) or lines[index + 1] != line + 1:
            parts.append(str(start) if start == line else f"{start}-{line}")
            start = None
    return ", ".join(parts)


def change_text(rows: list[FileChange], base: str) -> str:
    total_instrumented = sum(len(r.instrumented) for r in rows)
    total_reached = sum(len(r.reached) for r in rows)
    lines = [f"lines changed against {base}: {sum(r.changed for r in rows)}, of which "
             f"{total_instrumented} run code; reached: {total_reached}"
             + (f" ({100.0 * total_reached / total_instrumented:.1f}%)"
                if total_instrumented else "")]
    for row in rows:
        lines.append(f"  {row.name}: {row.changed} changed, {len(row.instrumented)} run "
                     f"code, {len(row.reached)} reached"
                     + (f"; not reached: {ranges(row.unreached)}" if row.unreached else ""))
    return "\n".join(lines)
