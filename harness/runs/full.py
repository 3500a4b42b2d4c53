"""One run in one VM: our tests (pytest in the guest), KUnit and the kernel's MPTCP
selftests, reported together: a summary per part, one JUnit XML file for all of it.
"""

from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from harness import backports, testrun
from harness.coverage import report as coverage_report
from harness.coverage.counters import Counters
from harness.coverage.counters import part as coverage_part
from harness.kernel.selftests_build import build_selftests
from harness.report.junit import write_junit
from harness.report.ktap import ScriptResult
from harness.report.summary import summary_line, summary_table
from harness.runs import kunit as kunit_runner
from harness.runs import selftest_plan
from harness.runs import selftests as selftest_runner
from harness.runs import tests as test_runner


@dataclass(frozen=True)
class SelftestOptions:
    only: tuple[str, ...] = ()  # --only entries; empty: the whole suite
    expect_all_features: bool = False
    retries: int = 0
    timeout_s: int | None = None  # None: the suite's settings file
    verbose: bool = False
    capture: bool = False  # the scripts that can capture their traffic (-c) do


@dataclass
class FullRun:
    target: str
    pytest: testrun.Outcome | None = None
    pytest_junit: str = ""  # the XML pytest wrote in the guest
    pytest_splats: list[str] = field(default_factory=list)  # decoded
    kunit: list[ScriptResult] = field(default_factory=list)
    selftests: list[ScriptResult] = field(default_factory=list)
    coverage: coverage_report.Report | None = None

    @property
    def failed(self) -> bool:
        pytest_failed = self.pytest is not None and self.pytest.exit_code != 0
        return pytest_failed or any(r.status == "fail" for r in self.kunit + self.selftests)


def run_in_vm(vm, tests_dir: Path | None, keyword: str | None,
              selftests: SelftestOptions | None, kunit: bool | None = None,
              keep_passing: bool = False, coverage: bool = False,
              keep_on_hang: bool = False) -> FullRun:
    """Our tests in tests_dir (if given), KUnit (default: with the selftests), selftests.
    keep_passing keeps the evidence of passing tests too (failed tests always leave it).
    coverage (a kernel of the coverage variant) collects the gcov counters of each test,
    of KUnit and of each selftest slot, and writes a report of net/mptcp's coverage.
    keep_on_hang leaves a command that outlives its timeout running, in a VM left up."""
    vm.check_runs_its_image()
    counters = Counters.of(vm) if coverage else None
    run = FullRun(f"VM kernel {vm.kernel_release()} ({vm.accel})")
    if tests_dir is not None:
        with tempfile.TemporaryDirectory(prefix="mlab-junit-") as scratch:
            junit = Path(scratch) / "pytest.xml"
            run.pytest = test_runner.run_pytest_in_vm(vm, [tests_dir], keyword, junit,
                                                     keep_passing, counters, keep_on_hang)
            run.pytest_junit = junit.read_text()
        run.pytest_splats = [vm.decoded(s) for s in run.pytest.splats]
    if kunit if kunit is not None else selftests is not None:
        run.kunit = _kunit(vm, counters)
    if selftests is not None:
        run.selftests = _selftests(vm, selftests, counters, keep_on_hang)
    if counters:
        run.coverage = coverage_report.write(counters.directory, counters.build_dir,
                                             f"net/mptcp, {run.target}")
    return run


def _kunit(vm, counters: Counters | None) -> list[ScriptResult]:
    with coverage_part(counters, "kunit"):
        return kunit_runner.run_suites(vm)


def _selftests(vm, options: SelftestOptions, counters: Counters | None,
               keep_on_hang: bool) -> list[ScriptResult]:
    suite = build_selftests(vm.image)
    slots = (selftest_plan.parse_only(list(options.only), suite) if options.only
             else selftest_plan.default_slots(suite))
    policy = selftest_runner.Policy(options.timeout_s or suite.timeout_s,
                                    options.expect_all_features, options.retries,
                                    tuple(backports.path_dirs(vm.cache)), keep_on_hang,
                                    options.capture)
    return selftest_runner.run_all(vm, suite, slots, policy, options.verbose, counters)


def report(run: FullRun, junit: Path | None) -> int:
    """Print each part's summary, write the JUnit XML; return the exit code of the run."""
    for text in run.pytest_splats:
        print(f"\n--- kernel splat during the tests ---\n{text}")
    if run.kunit or run.selftests:
        print("\n" + summary_table(run.kunit + run.selftests))
    if run.pytest is not None:
        print(run.pytest.summary(run.target))
    if run.kunit:
        print(summary_line(run.kunit, f"KUnit on {run.target}"))
    if run.selftests:
        print(summary_line(run.selftests, f"selftests on {run.target}"))
    if run.coverage is not None:
        print(f"\ncoverage of net/mptcp (report: {run.coverage.index}):\n"
              f"{run.coverage.summary}")
    if junit is not None:
        write_combined_junit(run, junit)
    if run.pytest is not None and run.pytest.exit_code != 0:
        return run.pytest.exit_code
    return 1 if run.failed else 0


def write_combined_junit(run: FullRun, path: Path) -> None:
    """pytest's test suites, then KUnit's and the selftests', under one <testsuites>."""
    root = ET.Element("testsuites")
    if run.pytest_junit:
        parsed = ET.fromstring(run.pytest_junit)
        root.extend(parsed.iter("testsuite") if parsed.tag == "testsuites" else [parsed])
    for prefix, results in (("kunit", run.kunit), ("selftests", run.selftests)):
        if results:
            with tempfile.TemporaryDirectory(prefix="mlab-junit-") as scratch:
                part = Path(scratch) / "part.xml"
                write_junit(part, results, suite_prefix=prefix)
                root.extend(ET.parse(part).getroot().iter("testsuite"))
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
