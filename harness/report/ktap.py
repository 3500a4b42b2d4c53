"""Read TAP 13 / KTAP v1 output: KUnit results and the kernel's selftest scripts.

`parse_ktap` turns results into Cases (a nested block becomes the children of the result
line after it). `parse_selftest` reads one selftest script: its TAP block, enriched from the
human-readable lines above it, and its exit code, so that a failure is never lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.vm.oracle import TIMESTAMP

KSFT_SKIP = 4  # kselftest exit code of a skipped script
STOPPED = "no result: the output stopped before this test"
SCRIPT_STOPPED = "no result: the script stopped before this test"
NO_NAME = "(no result)"
TAIL_LINES = 40

VERSION = re.compile(r"K?TAP version \d+$")
PLAN = re.compile(r"1\.\.(\d+)\b")
RESULT = re.compile(r"(not ok|ok) (\d+)\b(?: -)? ?(.*)$")
SUBTEST = re.compile(r"# Subtest: (.*)$")
BAIL_OUT = re.compile(r"Bail out!\s*(.*)$")
COMMENT = re.compile(r"(?<!\S)#\s*")  # lookbehind: linear on long runs of spaces
DIRECTIVE = re.compile(r"(skip\w*|todo|xfail|ignore)\b[\s:]*(.*)$", re.I)
DIRECTIVE_OR_TIME = re.compile(r"(?:skip|todo|xfail|ignore|time=)", re.I)
TIME = re.compile(r"\btime=(\d+(?:\.\d+)?)(ms|s)\b")
HEADER = re.compile(r"(\d{2,3}) (\S.*)$")  # "07 ....chk last_data_sent   [SKIP] ...", "001 ..."
STATUS_COLUMN = re.compile(r"(?<!\S)\[\s*(?:OK|SKIP|FAIL|INFO|WARN)\s*\].*$")
SKIP_MARK = re.compile(r"\[\s*SKIP\s*\]\s*(.*)$")
FAIL_MARK = re.compile(r"\[\s*FAIL\s*\]\s*(.*)$")


@dataclass
class Case:
    name: str  # as printed, without "- " and without the directive
    status: str  # "pass" | "fail" | "skip" | "xfail"
    number: int | None = None
    reason: str = ""  # skip/todo reason; for a failure its first detail line
    output: str = ""  # the lines that belong to this case
    duration_s: float | None = None
    children: list[Case] = field(default_factory=list)


@dataclass
class ScriptResult:
    name: str  # "diag.sh", "mptcp_join.sh -f", a KUnit suite
    exit_code: int | None  # None: cut at its timeout
    cases: list[Case]
    output: str
    duration_s: float
    note: str = ""  # set by the runner: timeout, kernel splat, retries
    flaky: bool = False  # failed, then passed on a retry
    splats: tuple[str, ...] = ()  # the kernel splats (titles) logged while it ran
    failed_attempts: tuple[ScriptResult, ...] = ()  # the other attempts, that failed, in order
    console: str = ""  # the VM's console while it ran (and settled)
    evidence: tuple[Path, ...] = ()  # files kept for a failed or flaky script
    pcaps: tuple[Path, ...] = ()  # with --capture: the traffic this attempt captured

    def _count(self, *statuses: str) -> int:
        return sum(case.status in statuses for _, case in leaves(self.cases))

    @property
    def passed(self) -> int:
        """Leaf cases that passed (an expected failure counts as passed)."""
        return self._count("pass", "xfail")

    @property
    def failed(self) -> int:
        return self._count("fail")

    @property
    def skipped(self) -> int:
        return self._count("skip")

    @property
    def status(self) -> str:
        """ "flaky", else "fail" if a case failed, "skip" if all were skipped, else "pass"."""
        if self.flaky:
            return "flaky"
        if self.failed:
            return "fail"
        return "skip" if self.cases and self.skipped == len(leaves(self.cases)) else "pass"


def leaves(cases: list[Case], prefix: str = "") -> list[tuple[str, Case]]:
    """(qualified name "suite.case", case) of each test: the childless cases, and a failed
    parent none of whose descendants failed (its own failure must count too)."""
    found = []
    for case in cases:
        name = f"{prefix}{case.name}"
        below = leaves(case.children, f"{name}.")
        lone_failure = case.status == "fail" and all(c.status != "fail" for _, c in below)
        if not case.children or lone_failure:
            found.append((name, case))
        found += below
    return found


def parse_ktap(text: str, missing_reason: str = STOPPED) -> list[Case]:
    """The top-level results of TAP/KTAP text, nested blocks as children.

    Console timestamps are stripped; unindented lines that are neither TAP nor diagnostics
    are noise. A plan's results that never came are failed cases with missing_reason.
    """
    parser = _Parser(missing_reason)
    for index, raw in enumerate(text.split("\n")):
        if not parser.feed(index, TIMESTAMP.sub("", raw.rstrip())):
            break
    return parser.finish()


@dataclass
class _Block:
    """One indentation level being read: its results and the lines not yet given to one."""
    name: str = ""
    plan: int | None = None
    in_header: bool = False  # between "KTAP version"/"# Subtest:" and the plan
    cases: list[Case] = field(default_factory=list)
    header: list[tuple[int, str]] = field(default_factory=list)  # for the parent's result
    log: list[tuple[int, str]] = field(default_factory=list)  # for the next result here


class _Parser:
    def __init__(self, missing_reason: str):
        self.missing_reason = missing_reason
        self.blocks: dict[int, _Block] = {0: _Block()}

    def feed(self, index: int, line: str) -> bool:
        """Read one line; False at a "Bail out!"."""
        text = line.lstrip(" ")
        indent = len(line) - len(text)
        if VERSION.match(text):
            self._open(indent)
        elif match := SUBTEST.match(text):
            block = self.blocks.get(indent)
            if block is None or block.name or block.cases or not block.in_header:
                block = self._open(indent)
            block.name = match.group(1).strip()
            block.header.append((index, line))
        elif match := PLAN.match(text):
            block = self.blocks.setdefault(indent, _Block())
            block.plan, block.in_header = int(match.group(1)), False
        elif match := RESULT.match(text):
            self._result(indent, index, match)
        elif match := BAIL_OUT.match(text):
            self.missing_reason = f"no result: the output bailed out ({match.group(1)})"
            return False
        elif text.startswith("#") or (text and indent > 0):
            block = self.blocks.setdefault(indent, _Block())
            (block.header if block.in_header else block.log).append((index, line))
        return True

    def finish(self) -> list[Case]:
        for indent in sorted(self.blocks, reverse=True)[:-1]:
            self._retire(indent)
        top = self.blocks[0]
        return top.cases + _missing(top.cases, top.plan, self.missing_reason)

    def _open(self, indent: int) -> _Block:
        if indent > 0:
            self._retire(indent)
        block = self.blocks.setdefault(indent, _Block())
        block.in_header = indent > 0
        return block

    def _retire(self, indent: int) -> None:
        """Close a block whose parent result never came: a failed case stands in for it."""
        block = self.blocks.pop(indent, None)
        if block is None or not (block.cases or block.name or block.plan is not None):
            return
        parent = self.blocks[max(i for i in self.blocks if i < indent)]
        number = max((c.number or 0 for c in parent.cases), default=0) + 1
        children = block.cases + _missing(block.cases, block.plan, self.missing_reason)
        parent.cases.append(Case(block.name or NO_NAME, "fail", number, self.missing_reason,
                                 _text(block.header + block.log, indent), children=children))

    def _result(self, indent: int, index: int, match: re.Match) -> None:
        case = _case(match)
        lines = []
        for rank, deeper in enumerate(sorted(i for i in self.blocks if i > indent)):
            block = self.blocks.pop(deeper)  # deeper than the nearest block: orphans, kept
            case.children += block.cases
            if rank == 0:
                case.children += _missing(block.cases, block.plan, self.missing_reason)
            lines += block.header + block.log
        here = self.blocks.setdefault(indent, _Block())
        case.output = _text(lines + here.log, indent)
        if case.status == "fail" and not (case.reason or case.children):
            case.reason = _first_diagnostic(case.output, case.name)
        here.log, here.in_header = [], False
        here.cases.append(case)


def _case(match: re.Match) -> Case:
    """A Case from a result line: "ok 7 - name # SKIP reason time=1805ms"."""
    result, number, rest = match.groups()
    name, comment = _split_comment(rest)
    duration = None
    if time := TIME.search(comment):
        duration = float(time.group(1)) / (1000 if time.group(2) == "ms" else 1)
        comment = " ".join(TIME.sub("", comment).split())
    status = "pass" if result == "ok" else "fail"
    reason = comment
    if directive := DIRECTIVE.match(comment):
        word, reason = directive.group(1).lower(), directive.group(2).strip()
        status = "skip" if word.startswith("skip") else "xfail"
    return Case(name, status, int(number), reason, duration_s=duration)


def _split_comment(text: str) -> tuple[str, str]:
    """Description and comment: the first "#" that starts a directive or time=, else the
    first "#" (so a "#" inside a name survives when the comment is recognisable)."""
    marks = list(COMMENT.finditer(text))
    if not marks:
        return text.strip(), ""
    mark = next((m for m in marks if DIRECTIVE_OR_TIME.match(text, m.end())), marks[0])
    return text[:mark.start()].strip(), text[mark.end():].strip()


def _first_diagnostic(output: str, name: str) -> str:
    """The first line of a failed case's output, without "# name: " (a KUnit assertion)."""
    first = next((line.strip() for line in output.split("\n") if line.strip()), "")
    return first.lstrip("#").strip().removeprefix(f"{name}:").strip()


def _missing(cases: list[Case], plan: int | None, reason: str) -> list[Case]:
    seen = {case.number for case in cases}
    return [Case(NO_NAME, "fail", n, reason) for n in range(1, (plan or 0) + 1) if n not in seen]


def _text(lines: list[tuple[int, str]], indent: int) -> str:
    """The lines in their order, without the indentation of the case they belong to."""
    return "\n".join(line[min(indent, len(line) - len(line.lstrip(" "))):]
                     for _, line in sorted(lines))


def parse_selftest(name: str, output: str, exit_code: int | None,
                   duration_s: float) -> ScriptResult:
    """The result of a selftest script from its output and exit code (None: cut at its
    timeout). Its TAP gives the cases, the numbered human-readable blocks their output and
    reasons; the exit code adds a case when the TAP alone would hide a failure or a skip."""
    human, tap = _split_at_tap(output)
    blocks = _human_blocks(human)
    cases = [_enrich(case, blocks) for case in parse_ktap(tap, SCRIPT_STOPPED)]
    return ScriptResult(name, exit_code, _with_script_cases(name, output, exit_code, cases),
                        output, duration_s)


def _split_at_tap(output: str) -> tuple[str, str]:
    """The human-readable part and the TAP part (the whole output for both without a
    "TAP version" line)."""
    lines = output.split("\n")
    start = next((i for i, line in enumerate(lines)
                  if VERSION.match(TIMESTAMP.sub("", line).strip())), None)
    if start is None:
        return output, output
    return "\n".join(lines[:start]), "\n".join(lines[start:])


@dataclass
class _HumanBlock:
    number: int
    title: str
    lines: list[str]


def _human_blocks(text: str) -> list[_HumanBlock]:
    """Each numbered header line ("07 ...", "001 ...") with the lines up to the next one."""
    blocks: list[_HumanBlock] = []
    for line in text.split("\n"):
        line = line.rstrip()
        if match := HEADER.match(line):
            title = STATUS_COLUMN.sub("", match.group(2)).strip()
            blocks.append(_HumanBlock(int(match.group(1)), title, [line]))
        elif blocks:
            blocks[-1].lines.append(line)
    return blocks


def _enrich(case: Case, blocks: list[_HumanBlock]) -> Case:
    """The case with the output (and the name and reason, when missing) of its human block:
    same number, and preferably a title that ends the TAP name."""
    candidates = [b for b in blocks if b.number == case.number]
    block = next((b for b in candidates if case.name.endswith(b.title)), None)
    block = block or next(iter(candidates), None)
    if block is None:
        return case
    return replace(case, name=block.title if case.name == NO_NAME else case.name,
                   output="\n".join(block.lines).strip("\n"),
                   reason=case.reason if case.name == NO_NAME
                   else _human_reason(case.status, block.lines) or case.reason)


def _human_reason(status: str, lines: list[str]) -> str:
    """Text after [SKIP] for a skip; after the first [FAIL] (else the next line) for a fail."""
    mark = {"skip": SKIP_MARK, "fail": FAIL_MARK}.get(status)
    marked = [(i, found) for i, line in enumerate(lines) if mark and (found := mark.search(line))]
    if not marked:
        return ""
    index, found = marked[0]
    details = [line.strip() for line in lines[index + 1:] if line.strip()]
    return found.group(1).strip() or (details[0] if status == "fail" and details else "")


def _with_script_cases(name: str, output: str, exit_code: int | None,
                       cases: list[Case]) -> list[Case]:
    """The kselftest exit code rules (0 pass, 4 skip, else fail; None: cut at its timeout),
    so that neither a failure nor a skip hides behind missing or passing TAP results."""
    tail = "\n".join(output.rstrip("\n").split("\n")[-TAIL_LINES:])
    if exit_code is None:
        return [*cases, Case(f"{name}: cut at its timeout", "fail",
                             reason="cut at its timeout", output=tail)]
    if not cases:
        return [_lone_case(name, output, exit_code, tail)]
    if exit_code in (0, KSFT_SKIP) or any(c.status == "fail" for _, c in leaves(cases)):
        return cases
    return [*cases, Case(f"{name}: exit code {exit_code}", "fail",
                         reason=f"exit code {exit_code} but no failing TAP result", output=tail)]


def _lone_case(name: str, output: str, exit_code: int, tail: str) -> Case:
    """The one case of a script without TAP results, from its exit code."""
    if exit_code == 0:
        return Case(name, "pass")
    if exit_code == KSFT_SKIP:
        skips = [line.strip() for line in output.split("\n") if "skip" in line.lower()]
        return Case(name, "skip", reason=skips[-1] if skips else "exit code 4 (KSFT_SKIP)",
                    output=tail)
    return Case(name, "fail", reason=f"exit code {exit_code} and no TAP result", output=tail)
