"""A plain-text summary of ScriptResults for the terminal: a table with a totals row, the
failed, skipped and flaky ones with their reasons, and a one-line verdict."""

from __future__ import annotations

from harness.report.ktap import ScriptResult, leaves

HEADINGS = ("script", "status", "passed", "failed", "skipped", "time (s)")
REASON_WIDTH = 120


def summary_table(results: list[ScriptResult]) -> str:
    """The table, then "failed:", "skipped:" and "flaky:" lists (each only when not empty)."""
    rows = [(r.name, r.status, r.passed, r.failed, r.skipped, f"{r.duration_s:.1f}")
            for r in results]
    rows.append(("total", overall_status(results), *_totals(results),
                 f"{sum(r.duration_s for r in results):.1f}"))
    lines = _table(rows)
    for title, status in (("failed", "fail"), ("skipped", "skip")):
        listed = _cases(results, status)
        lines += [f"\n{title}:", *listed] if listed else []
    flaky = [f"  {r.name}: {_short(r.note or 'passed on a retry')}" for r in results if r.flaky]
    lines += ["\nflaky:", *flaky] if flaky else []
    return "\n".join(lines)


def summary_line(results: list[ScriptResult], target: str = "selftests") -> str:
    """ "selftests: 3 scripts, 57 passed, 1 failed, 4 skipped, 0 flaky"."""
    passed, failed, skipped = _totals(results)
    scripts = f"{len(results)} script{'' if len(results) == 1 else 's'}"
    flaky = sum(r.flaky for r in results)
    return (f"{target}: {scripts}, {passed} passed, {failed} failed, {skipped} skipped, "
            f"{flaky} flaky")


def overall_status(results: list[ScriptResult]) -> str:
    """ "fail" if a script failed, else "flaky", else "skip" if all skipped, else "pass"."""
    statuses = {r.status for r in results}
    for status in ("fail", "flaky"):
        if status in statuses:
            return status
    return "skip" if statuses == {"skip"} else "pass"


def _totals(results: list[ScriptResult]) -> tuple[int, int, int]:
    return (sum(r.passed for r in results), sum(r.failed for r in results),
            sum(r.skipped for r in results))


def _table(rows: list[tuple]) -> list[str]:
    """Fixed-width columns: script and status left-aligned, the numbers right-aligned."""
    cells = [HEADINGS, *[tuple(map(str, row)) for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADINGS))]

    def line(row: tuple[str, ...]) -> str:
        padded = [cell.ljust(w) if i < 2 else cell.rjust(w)
                  for i, (cell, w) in enumerate(zip(row, widths, strict=True))]
        return "  ".join(padded)
    rule = "-" * len(line(HEADINGS))
    return [line(HEADINGS), rule, *map(line, cells[1:-1]), rule, line(cells[-1])]


def _cases(results: list[ScriptResult], status: str) -> list[str]:
    """One line per leaf case with this status: script, number and name, reason."""
    listed = []
    for result in results:
        for name, case in leaves(result.cases):
            if case.status == status:
                number = f" #{case.number}" if case.number is not None else ""
                reason = f": {_short(case.reason)}" if case.reason else ""
                listed.append(f"  {result.name}{number} {name}{reason}")
    return listed


def _short(text: str) -> str:
    """The first line of text, cut to REASON_WIDTH characters."""
    first = text.strip().split("\n")[0]
    return first if len(first) <= REASON_WIDTH else first[:REASON_WIDTH - 3] + "..."
