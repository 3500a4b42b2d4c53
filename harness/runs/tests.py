"""Our tests (tests/mptcp) run by pytest inside the VM, against the booted kernel.

The project and its virtualenv are at the same paths in the guest; pytest writes its JUnit
XML into the VM's exchange directory, and the host reads it there. The build record of the
booted image is handed to the guest's pytest plugin, which decides the series' tests from it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from harness import evidence
from harness.coverage.counters import Counters
from harness.errors import HarnessError
from harness.paths import PROJECT_ROOT
from harness.selection import files_selected
from harness.testrun import PYTEST_NO_TESTS, Outcome, count_results, pytest_argv
from harness.vm.kmsg import BUILD_RECORD_ENV, GUEST_ENV

GUEST_TEST_TIMEOUT = 3600.0
GUEST_PYTEST = "harness.runs.guest_pytest"  # pytest with our plugin registered


def run_pytest_in_vm(vm, paths: list[Path], keyword: str | None = None,
                     junit: Path | None = None, keep_passing: bool = False,
                     counters: Counters | None = None, keep_on_hang: bool = False) -> Outcome:
    """Run pytest inside the VM, output streamed here; JUnit XML copied to `junit`. Splats
    in the console fail the run. What failed tests (all, with keep_passing) leave is kept
    under reports/ (harness.evidence). With counters, each test's gcov counters are
    collected (the guest's plugin resets and copies them around each test). keep_on_hang:
    a pytest that outlives its timeout is left running in the VM, which stays up."""
    guest_junit = vm.exchange_dir / "junit.xml"
    guest_junit.unlink(missing_ok=True)
    written = vm.exchange_dir / "evidence"
    shutil.rmtree(written, ignore_errors=True)
    selected = files_selected(paths, keyword, vm.cache) if keyword else paths
    _python, _m, _pytest, *args = pytest_argv(selected, keyword, guest_junit,
                                              ("-p", "no:cacheprovider", "-W",
                                               "ignore::pytest.PytestAssertRewriteWarning"))
    record = vm.build_record_path()
    env = {GUEST_ENV: "1", "PYTHONDONTWRITEBYTECODE": "1",
           # ours is registered by GUEST_PYTEST, without a look at every installed
           # package's entry points (over 9p, under emulation)
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
           **({BUILD_RECORD_ENV: str(record)} if record else {}),
           **evidence.pytest_env(written, keep_passing),
           **(counters.env() if counters else {})}
    report = vm.run_module(GUEST_PYTEST, args, GUEST_TEST_TIMEOUT * vm.slowdown, output=_echo,
                           cwd=PROJECT_ROOT, env=env, keep_on_hang=keep_on_hang)
    code = report.returncode
    if code == PYTEST_NO_TESTS:
        raise HarnessError(f"pytest collected no test in {' '.join(map(str, paths))}"
                           + (f" matching -k {keyword!r}" if keyword else ""))
    if not guest_junit.exists():
        raise HarnessError(f"pytest in the VM exited with {code} before writing {guest_junit}")
    if junit:
        junit.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(guest_junit, junit)
    report_dir = evidence.finish_run(written, junit)
    if report.splats and code == 0:
        code = 1
    return Outcome(code, *count_results(guest_junit), splats=tuple(report.splats),
                   evidence=report_dir)


def _echo(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
