"""What one coverage covers and another does not: two reports, or two kinds of test."""

from __future__ import annotations

from dataclasses import dataclass

from harness.coverage.tables import short_name
from harness.coverage.tracefile import FileCoverage


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
