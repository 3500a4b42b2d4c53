"""lcov tracefiles read into sets: which lines, functions and branches ran, per test.

A tracefile (`.info`) holds one record per source file and test name (`TN:`): `DA:` line
counts, `FN:`/`FNDA:` functions, `BRDA:` branches. Our reports capture each test (or
selftest slot) under its own test name, so one merged tracefile answers both "what did the
run cover" (the union) and "which tests reach this function".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FileCoverage:
    lines: dict[int, int] = field(default_factory=dict)  # line -> execution count
    functions: dict[str, int] = field(default_factory=dict)  # name -> call count
    branches: dict[tuple[int, str, str], int] = field(default_factory=dict)

    def add(self, other: FileCoverage) -> None:
        for mine, theirs in ((self.lines, other.lines), (self.functions, other.functions),
                             (self.branches, other.branches)):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count

    def hit_lines(self) -> set[int]:
        return {line for line, count in self.lines.items() if count}

    def hit_functions(self) -> set[str]:
        return {name for name, count in self.functions.items() if count}

    def hit_branches(self) -> set[tuple[int, str, str]]:
        return {key for key, count in self.branches.items() if count}


# test name -> source file -> what ran of it
Tracefile = dict[str, dict[str, FileCoverage]]


class TracefileError(ValueError):
    pass


def read(path: Path) -> Tracefile:
    data: Tracefile = defaultdict(dict)
    test, current = "", None
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        kind, _, value = line.partition(":")
        try:
            if kind == "TN":
                test = value
            elif kind == "SF":
                current = data[test].setdefault(value, FileCoverage())
            elif kind == "end_of_record":
                current = None
            elif current is not None:
                _record(current, kind, value)
        except (ValueError, IndexError):
            raise TracefileError(f"{path}:{number}: not an lcov record: {line!r}") from None
    return dict(data)


def _record(coverage: FileCoverage, kind: str, value: str) -> None:
    if kind == "DA":
        line, count = value.split(",")[:2]
        coverage.lines[int(line)] = coverage.lines.get(int(line), 0) + int(count)
    elif kind == "FN":  # a function of the file, called or not (FNDA counts the calls)
        _line, name = value.split(",", 1)
        coverage.functions.setdefault(name, 0)
    elif kind == "FNDA":
        count, name = value.split(",", 1)
        coverage.functions[name] = coverage.functions.get(name, 0) + int(count)
    elif kind == "BRDA":
        line, block, branch, taken = value.split(",")
        key = (int(line), block, branch)
        coverage.branches[key] = coverage.branches.get(key, 0) + \
            (0 if taken == "-" else int(taken))


def union(data: Tracefile, tests: set[str] | None = None) -> dict[str, FileCoverage]:
    """What the tests (all of them by default) covered together, per source file."""
    merged: dict[str, FileCoverage] = {}
    for test, files in data.items():
        if tests is not None and test not in tests:
            continue
        for name, coverage in files.items():
            merged.setdefault(name, FileCoverage()).add(coverage)
    return merged


def tests_reaching(data: Tracefile, function: str) -> list[str]:
    """The tests during which `function` was called at least once."""
    return sorted(test for test, files in data.items()
                  if any(c.functions.get(function, 0) for c in files.values()))
