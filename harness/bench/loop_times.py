"""The edit-test loop on a booted VM: what a guest command and one test cost beyond
themselves (the loop that `invoke test -k ONE`, repro and bisect repeat).

A VM is booted in a scratch state directory (a VM the user has up is left alone), then:
- the first command of the boot, which also starts the guest's warm Python;
- a guest command (`true`): the SSH round trips, the settle step, the console sync;
- `invoke test -k ONE_TEST` as the task runs it (the kernel check, the host's selection of
  the test files, pytest in the guest, the JUnit report): its wall time, the test's own
  time as pytest reports it (setup, call, teardown), and the difference, the overhead.
"""

from __future__ import annotations

import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.bench import Timings
from harness.errors import HarnessError
from harness.paths import PROJECT_ROOT
from harness.runs import full
from harness.vm import machine

ONE_TEST = "test_ipproto_mptcp_gives_an_mptcp_connection"
COMMAND_TIMEOUT = 600.0


def _timed(action) -> float:
    start = time.monotonic()
    action()
    return time.monotonic() - start


def _run_ok(vm, argv: list[str]) -> None:
    report = vm.run(argv, COMMAND_TIMEOUT)
    if report.failed:
        raise HarnessError(f"{' '.join(argv)} failed in the VM: {report.stdout[-2000:]}")


def _one_test(vm) -> tuple[float, float]:
    """(wall time of the run, the test's own time from the JUnit report)."""
    start = time.monotonic()
    run = full.run_in_vm(vm, PROJECT_ROOT / "tests" / "mptcp", ONE_TEST, None, kunit=False)
    wall = time.monotonic() - start
    if run.pytest is None or run.pytest.exit_code != 0 or run.pytest.passed != 1:
        raise HarnessError(f"{ONE_TEST} did not pass in the VM: {run.pytest}")
    cases = ET.fromstring(run.pytest_junit).iter("testcase")
    return wall, sum(float(case.get("time", 0)) for case in cases)


def measure(image: Path, cache: Path, runs: int = 5) -> list[Timings]:
    accel = machine.choose_accel(image, cache)
    with tempfile.TemporaryDirectory(prefix="bench-loop-", dir=cache) as scratch:
        try:
            vm = machine.boot(machine.BootOptions(image=image, accel=accel), Path(scratch))
            first = _timed(lambda: vm.run_module("platform", [], COMMAND_TIMEOUT))
            commands = [_timed(lambda: _run_ok(vm, ["true"])) for _ in range(runs)]
            tests = [_one_test(vm) for _ in range(runs)]
        finally:
            machine.halt(Path(scratch))
    width = 44
    return [Timings(f"first Python command of a boot ({accel})", [first], width),
            Timings("guest command `true`, settle included", commands, width),
            Timings(f"`test -k {ONE_TEST[:20]}...`, wall", [wall for wall, _ in tests], width),
            Timings("  of which the test itself (pytest)", [own for _, own in tests], width),
            Timings("  overhead (wall - the test)", [wall - own for wall, own in tests], width)]
