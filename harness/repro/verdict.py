"""What one run of a bundle showed, and the verdict over all runs: "reproduced 7/10".

A run reproduces the bug when any condition of the bundle's `[expect]` holds: a splat
matching the pattern (or any splat), a hang, a step that failed, a step's output matching.
Splats that the expectation does not name are kept as "other splats": on a kernel expected
to be fixed, any splat fails the verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.repro.bundle import Bundle, Expect
from harness.vm.oracle import Splat

OFFSET = re.compile(r"\+0x[0-9a-f]+/0x[0-9a-f]+")
CPU_PID = re.compile(r"CPU: \d+ (UID: \d+ )?PID: \d+ ")
ADDRESS = re.compile(r"0x[0-9a-f]{8,}|ffff[0-9a-f]{12}")


def signature(splat: Splat) -> str:
    """The splat's title without what changes from run to run (CPU, PID, offsets,
    addresses): 'WARNING: at net/mptcp/pm_netlink.c:1510 mptcp_pm_nl_rm_addr_or_subflow'."""
    title = CPU_PID.sub("", splat.title)
    return ADDRESS.sub("ADDR", OFFSET.sub("", title)).strip()


@dataclass
class StepOutcome:
    name: str
    status: int | None
    duration_s: float
    cut: bool
    output: str  # its text (stdout and stderr)


@dataclass
class RunResult:
    index: int  # 1-based
    duration_s: float
    steps: list[StepOutcome] = field(default_factory=list)
    splats: list[Splat] = field(default_factory=list)
    hang: bool = False
    died: bool = False  # the guest panicked or went away; the VM was restarted
    reproduced: bool = False
    matched: str = ""  # what matched the expectation: a signature, "hang", "step x failed"
    note: str = ""

    @property
    def other_splats(self) -> list[Splat]:
        return [s for s in self.splats if signature(s) != self.matched]

    def line(self) -> str:
        text = f"run {self.index:2d}: " + ("reproduced" if self.reproduced else "not reproduced")
        if self.matched:
            text += f" ({self.matched})"
        text += f" in {self.duration_s:.1f} s"
        if self.other_splats:
            text += f"; other splats: {'; '.join(map(signature, self.other_splats))}"
        return text + (f" [{self.note}]" if self.note else "")


def judge(run: RunResult, expect: Expect) -> RunResult:
    """Set run.reproduced and run.matched from the bundle's expectation."""
    for splat in run.splats:
        if expect.any_splat or expect.splat and re.search(expect.splat, splat.text, re.M):
            run.reproduced, run.matched = True, signature(splat)
            return run
    if expect.hang and run.hang:
        run.reproduced, run.matched = True, "hang"
        return run
    by_name = {s.name: s for s in run.steps}
    failed = by_name.get(expect.step_failed) if expect.step_failed else None
    if failed is not None and failed.status not in (0, None):
        run.reproduced = True
        run.matched = f"step {failed.name} failed (exit {failed.status}" \
                      + (", cut at its timeout)" if failed.cut else ")")
        return run
    shown = by_name.get(expect.output_step) if expect.output_step else None
    if shown is not None and re.search(expect.output_matches, shown.output, re.M):
        run.reproduced, run.matched = True, f"step {shown.name} printed /{expect.output_matches}/"
    return run


@dataclass
class Verdict:
    bundle: Bundle
    kernel: str  # what was booted: release, variant, patches
    expect_reproduced: bool  # False for a run on the fixed kernel (--without-patches)
    runs: list[RunResult]

    @property
    def reproduced(self) -> list[RunResult]:
        return [r for r in self.runs if r.reproduced]

    @property
    def stray_splats(self) -> list[Splat]:
        return [s for r in self.runs for s in r.other_splats]

    @property
    def as_expected(self) -> bool:
        if self.expect_reproduced:
            return bool(self.reproduced)
        return not self.reproduced and not self.stray_splats

    def headline(self) -> str:
        count = f"{len(self.reproduced)}/{len(self.runs)}"
        text = (f"reproduced {count}" if self.reproduced else f"not reproduced {count}")
        if self.reproduced:
            first = self.reproduced[0]
            text += f": {first.matched} (first in run {first.index})"
        if self.stray_splats:
            text += f"; {len(self.stray_splats)} other splat(s)"
        expected = "reproduce" if self.expect_reproduced else "not reproduce (a fixed kernel)"
        verdict = "as expected" if self.as_expected else "NOT as expected"
        return f"{self.bundle.name}: {text} — {verdict} (expected to {expected})"

    def summary_markdown(self) -> str:
        times = [r.duration_s for r in self.runs]
        lines = [f"# {self.bundle.name}: {self.headline().split(': ', 1)[1]}", "",
                 f"- bug: {self.bundle.summary}",
                 *([f"- fix: {self.bundle.fix}"] if self.bundle.fix else []),
                 *([f"- trigger from: {self.bundle.origin}"] if self.bundle.origin else []),
                 f"- kernel: {self.kernel}",
                 f"- reproduced means: {self.bundle.expect.describe()}",
                 f"- time per run: {min(times):.1f}–{max(times):.1f} s "
                 f"(total {sum(times):.0f} s)" if times else "- no run",
                 "", "| run | result | matched | time | other splats |",
                 "|---|---|---|---|---|"]
        for run in self.runs:
            others = "; ".join(map(signature, run.other_splats)) or "-"
            result = "reproduced" if run.reproduced else "not reproduced"
            if run.note:
                result += f" ({run.note})"
            lines.append(f"| {run.index} | {result} | {run.matched or '-'} | "
                         f"{run.duration_s:.1f} s | {others} |")
        return "\n".join(lines) + "\n"
