"""Run KUnit suites in the booted kernel through debugfs and parse their KTAP.

Our VMs boot with `kunit.enable=1 kunit.filter_glob=mptcp*` (see harness.vm.machine): the
MPTCP suites run once at boot and get a debugfs directory each, where writing `run` runs a
suite again and `results` holds its latest KTAP.
"""

from __future__ import annotations

import time

from harness.errors import HarnessError
from harness.report.ktap import ScriptResult, parse_ktap
from harness.runs.selftests import with_splats

DEBUGFS = "/sys/kernel/debug/kunit"
MPTCP_SUITES = ("mptcp-crypto", "mptcp-token")
RUN_TIMEOUT = 300.0
RUN_AND_READ = 'echo 1 > "$1/run" && cat "$1/results"'



class KunitError(HarnessError):
    pass


def available_suites(vm) -> list[str]:
    listing = vm.run(["ls", DEBUGFS], 30)
    return sorted(listing.stdout.split()) if listing.returncode == 0 else []


def run_suite(vm, suite: str) -> ScriptResult:
    """Run one suite again and return its results (a splat during it is a failure too)."""
    start = time.monotonic()
    report = vm.run(["sh", "-c", RUN_AND_READ, "kunit", f"{DEBUGFS}/{suite}"],
                    RUN_TIMEOUT * vm.slowdown)
    if report.returncode != 0:
        raise KunitError(f"running KUnit suite {suite} through {DEBUGFS} failed:\n"
                         f"{report.stdout}")
    cases = parse_ktap(report.stdout)
    if not cases:
        raise KunitError(f"KUnit suite {suite}: no KTAP result in {DEBUGFS}/{suite}/results:\n"
                         f"{report.stdout}")
    result = ScriptResult(suite, 0, cases, report.stdout, time.monotonic() - start)
    return with_splats(result, report.splats) if report.splats else result


def run_suites(vm, suites: tuple[str, ...] = MPTCP_SUITES) -> list[ScriptResult]:
    present = available_suites(vm)
    missing = [s for s in suites if s not in present]
    if missing:
        raise KunitError(f"KUnit suites {', '.join(missing)} are not in {DEBUGFS} of the VM "
                         f"(present: {', '.join(present) or 'none'}): the kernel needs "
                         f"CONFIG_KUNIT_DEBUGFS and CONFIG_MPTCP_KUNIT_TEST, booted with "
                         f"kunit.enable=1 (invoke halt, then invoke boot)")
    return [run_suite(vm, s) for s in suites]
