"""`invoke coverage`: what a report says, what two reports (or two kinds of test) differ in,
which tests reach a function, and how much of a change (the patch series) ran."""

from __future__ import annotations

from pathlib import Path

from harness.coverage import changes, tracefile
from harness.coverage.compare import covered_only_text, difference, difference_text
from harness.coverage.errors import CoverageError
from harness.coverage.report import tracefile_of
from harness.coverage.tables import kinds_table, summary_table

# the lcov test names the runs give their parts (harness.coverage.lcov.test_name)
KINDS = {"tests/mptcp": "tests_", "selftests": "selftests_", "KUnit": "kunit"}


def kinds(data: tracefile.Tracefile) -> dict[str, set[str]]:
    """The report's test names by kind (ours, the kernel's selftests, KUnit), present ones."""
    found = {kind: {t for t in data if t.startswith(prefix)} for kind, prefix in KINDS.items()}
    return {kind: tests for kind, tests in found.items() if tests}


def describe(report: Path, compare: Path | None = None, function: str | None = None,
             split: bool = False, changed: bool = False, base: str | None = None) -> str:
    data = tracefile.read(tracefile_of(report))
    if changed or base:
        return of_change(tracefile.union(data), base)
    if function:
        return reaching(data, function)
    if compare is not None:
        other = tracefile.read(tracefile_of(compare))
        return difference_text(difference(tracefile.union(data), tracefile.union(other)),
                               str(report), str(compare))
    if split:
        return by_kind(data)
    return summary_table(tracefile.union(data))


def of_change(files: dict[str, tracefile.FileCoverage], base: str | None) -> str:
    """Which lines the change against base (default: the unpatched source) made the report
    reached."""
    tree = changes.tree_of(files)
    against = base or str(changes.default_base(tree))
    rows = changes.change_coverage(files, changes.changed_lines(tree, against))
    if not rows:
        raise CoverageError(f"no change in {tree / 'net/mptcp'} against {against}")
    return changes.change_text(rows, against)


def reaching(data: tracefile.Tracefile, function: str) -> str:
    known = any(function in c.functions for files in data.values() for c in files.values())
    if not known:
        raise CoverageError(f"no function {function!r} in the report's files")
    tests = tracefile.tests_reaching(data, function)
    return f"{function}: reached by {len(tests)} of {len(data)} tests\n" + \
        "".join(f"  {test}\n" for test in tests)


def by_kind(data: tracefile.Tracefile) -> str:
    """Coverage per file by each kind of test in the report and by all, then what each
    kind alone reaches."""
    groups = kinds(data)
    if len(groups) < 2:
        raise CoverageError("--split needs a report of more than one kind of test "
                            f"(this one has: {', '.join(groups) or 'none'}); "
                            "invoke test --all --coverage runs all three")
    parts = [kinds_table({**{kind: tracefile.union(data, tests)
                             for kind, tests in groups.items()},
                          "all": tracefile.union(data)}), ""]
    for kind, tests in groups.items():
        others = set(data) - tests
        diff = difference(tracefile.union(data, others), tracefile.union(data, tests))
        parts.append(covered_only_text(f"reached only by {kind}", diff.gained_lines,
                                       diff.gained_functions))
    return "\n".join(parts)
