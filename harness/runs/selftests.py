"""Run the kernel's MPTCP selftests in the VM, one script (or one mptcp_join.sh group) per slot.

Each slot runs under the guest's `timeout` with the suite's per-script limit (its `settings`
file: 1800 s), and under the kernel-health oracle: a splat during a script fails it. Policies
a CI needs: `expect_all_features` makes every skip a failure (and sets the suite's own
SELFTESTS_MPTCP_LIB_EXPECT_ALL_FEATURES), `retries` reruns a failed script and reports a
pass on retry as flaky. With `capture`, the scripts that can record their traffic do, and
a failed slot keeps the pcaps (harness.runs.selftest_capture).

Under software emulation mptcp_join.sh does not fit one slot: run in full, it is split into
its test groups (harness.runs.selftest_plan), each a slot of its own.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from harness import evidence
from harness.coverage.counters import Counters
from harness.coverage.counters import part as coverage_part
from harness.kernel.selftests_build import InstalledSuite
from harness.report.ktap import Case, ScriptResult, parse_selftest
from harness.runs import selftest_capture
from harness.runs.selftest_plan import Slot, command_line
from harness.vm.ssh import CommandTimeout

KILL_GRACE_S = 10  # the guest's timeout sends SIGKILL this long after SIGTERM
HOST_MARGIN_S = 60  # the host gives up (after a blocked-task dump) this long after that
EXPECT_ALL = "SELFTESTS_MPTCP_LIB_EXPECT_ALL_FEATURES"
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Policy:
    timeout_s: int
    expect_all_features: bool = False
    retries: int = 0
    path_dirs: tuple[str, ...] = ()  # put first on the scripts' PATH (newer tools)
    keep_on_hang: bool = False  # a script past its timeout stays, in a VM left up; the run ends
    capture: bool = False  # the scripts that can capture their traffic do (selftest_capture)


def run_slot(vm, suite: InstalledSuite, slot: Slot, policy: Policy,
             output: Callable[[str], None] | None = None,
             evidence_dir: Path | None = None) -> ScriptResult:
    """One slot, retried per the policy; a pass on retry is flaky. A slot during which the
    kernel splatted fails and is never retried: most MPTCP warnings are WARN_ON_ONCE, so a
    rerun would pass and wash the splat away. With the policy's capture, each attempt's pcaps
    go to `evidence_dir/<slot>/attempt-N-pcaps/`."""
    pcaps_dir = evidence_dir / evidence.directory_name("selftests", slot.name) \
        if policy.capture and evidence_dir else None
    result = _attempt(vm, suite, slot, policy, output, pcaps_dir, 1)
    failed: list[ScriptResult] = []
    if result.splats and policy.retries:
        print(f"selftests: {slot.name}: not retried, the kernel splatted during it", flush=True)
    while result.status == "fail" and not result.splats and len(failed) < policy.retries:
        failed.append(result)
        print(f"selftests: {slot.name}: attempt {len(failed)} failed ({_failed_names(result)})"
              + (f" [{result.note}]" if result.note else "") + ", retrying", flush=True)
        retry = _attempt(vm, suite, slot, policy, output, pcaps_dir, len(failed) + 1)
        if retry.status != "fail":
            note = (f"failed on attempt 1 ({_failed_names(failed[0])}), passed on attempt "
                    f"{len(failed) + 1}")
            return replace(retry, flaky=True, note=_join(retry.note, note),
                           failed_attempts=tuple(failed))
        result = replace(retry, note=_join(retry.note, f"failed {len(failed) + 1} attempts"),
                         failed_attempts=tuple(failed))
    return result


def _attempt(vm, suite: InstalledSuite, slot: Slot, policy: Policy,
             output: Callable[[str], None] | None, pcaps_dir: Path | None,
             number: int) -> ScriptResult:
    env = {"PATH": ":".join((*policy.path_dirs, GUEST_PATH))}
    if policy.expect_all_features:
        env[EXPECT_ALL] = "1"
    pcaps = pcaps_dir / f"attempt-{number}-pcaps" if pcaps_dir else None
    start, console_start = time.monotonic(), vm.console_size()
    with selftest_capture.attempt(suite.directory, slot.script, vm.exchange_dir / "capture",
                                  pcaps) as capture:
        argv, timeout = timed_command(suite, replace(slot, args=(*capture.options, *slot.args)),
                                      policy)
        exit_code, text, splats = _run(vm, argv, timeout, output, capture.cwd, env, policy)
    if exit_code == 124:  # the guest's timeout cut it
        exit_code = None
    result = replace(parse_selftest(slot.name, text, exit_code, time.monotonic() - start),
                     console="\n".join(vm.console_since(console_start)) + "\n",
                     pcaps=capture.pcaps)
    if exit_code is None:
        result = replace(result, note=f"cut at its {policy.timeout_s} s timeout")
    if splats:
        result = with_splats(result, splats)
    if policy.expect_all_features:
        result = _skips_as_failures(result)
    return result


def _run(vm, argv: list[str], timeout: int, output, cwd: Path, env: dict[str, str],
         policy: Policy) -> tuple[int | None, str, list]:
    """The script's exit status (None: cut by the host), its output and splats."""
    try:
        report = vm.run(argv, timeout, output, cwd=cwd, env=env, keep_on_hang=policy.keep_on_hang)
    except CommandTimeout as err:
        if err.kept:
            raise
        return None, err.output, []
    return report.returncode, report.stdout, report.splats


def timed_command(suite: InstalledSuite, slot: Slot, policy: Policy) -> tuple[list[str], int]:
    """The slot's argv under the guest's `timeout`, and the host's limit a little after it.
    With keep_on_hang there is no guest timeout: the host's limit leaves the script be."""
    started = command_line(suite.directory, slot)
    if policy.keep_on_hang:
        return started, policy.timeout_s
    return (["timeout", "-k", str(KILL_GRACE_S), str(policy.timeout_s), *started],
            policy.timeout_s + KILL_GRACE_S + HOST_MARGIN_S)


def with_splats(result: ScriptResult, splats) -> ScriptResult:
    """The result with one more failing case that shows the kernel's splats."""
    cases = [*result.cases, Case(f"{result.name}: kernel splat", "fail",
                                 reason="; ".join(map(str, splats)),
                                 output="\n\n".join(s.text for s in splats))]
    return replace(result, cases=cases, splats=(*result.splats, *map(str, splats)),
                   note=_join(result.note, "kernel splat: " + "; ".join(map(str, splats))))


def _skips_as_failures(result: ScriptResult) -> ScriptResult:
    def convert(case: Case) -> Case:
        children = [convert(c) for c in case.children]
        if case.status != "skip":
            return replace(case, children=children)
        return replace(case, status="fail", children=children,
                       reason=f"skipped with --expect-all-features: {case.reason}")
    return replace(result, cases=[convert(c) for c in result.cases])


def _failed_names(result: ScriptResult) -> str:
    names = [c.name for c in result.cases if c.status == "fail"]
    return ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def run_all(vm, suite: InstalledSuite, slots: list[Slot], policy: Policy,
            verbose: bool = False, counters: Counters | None = None) -> list[ScriptResult]:
    """Every slot in turn, one status line each (the scripts' output too when verbose). A
    failed or flaky slot leaves each attempt's output and console under reports/. With
    counters, the gcov counters of each slot (all its attempts) are collected."""
    results, kept = [], evidence.run_directory_for("selftests-")
    for slot in slots:
        print(f"selftests: {slot.name} ...", flush=True)
        with coverage_part(counters, evidence.directory_name("selftests", slot.name)):
            result = run_slot(vm, suite, slot, policy, _echo if verbose else None, kept)
        if result.status == "fail" or result.flaky:
            result = keep_attempts(result, kept / evidence.directory_name("selftests", slot.name))
            print(f"selftests: {slot.name}: evidence in {kept}", flush=True)
        else:
            selftest_capture.discard(result.pcaps)
        print(f"selftests: {slot.name}: {result.status} ({result.passed} passed, "
              f"{result.failed} failed, {result.skipped} skipped) in {result.duration_s:.0f} s"
              + (f" [{result.note}]" if result.note else ""), flush=True)
        results.append(result)
    return results


def keep_attempts(result: ScriptResult, directory: Path) -> ScriptResult:
    """Write the output and console of every attempt of a slot into directory; the result
    with those files, and the pcaps the attempts captured there, as its evidence."""
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for number, attempt in enumerate((*result.failed_attempts, result), start=1):
        for kind, text in (("output", attempt.output), ("console", attempt.console)):
            path = directory / f"attempt-{number}-{kind}.txt"
            path.write_text(text)
            files.append(path)
        files += attempt.pcaps
    return replace(result, evidence=tuple(files))


def _echo(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()

