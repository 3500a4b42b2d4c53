"""Run pytest on a set of test paths and summarise the result in one line.

pytest runs as a child process so its output streams as usual; the JUnit XML it writes
(to the user's path or a temporary file) gives the counts for the closing line.
"""

from __future__ import annotations

import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from harness import interrupts
from harness.errors import HarnessError

PYTEST_NO_TESTS = 5


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    passed: int
    failed: int
    errors: int
    skipped: int
    splats: tuple = ()  # kernel splats the console showed during a run in the VM

    def summary(self, target: str) -> str:
        text = (f"{target}: {self.passed} passed, {self.failed + self.errors} failed, "
                f"{self.skipped} skipped")
        if self.splats:
            text += f", {len(self.splats)} kernel splat(s): " + "; ".join(map(str, self.splats))
        return text


def pytest_argv(paths: list[Path], keyword: str | None, junit: Path,
                extra: tuple[str, ...] = ()) -> list[str]:
    argv = [sys.executable, "-m", "pytest", "-rfEs", f"--junitxml={junit}", *map(str, paths)]
    if keyword:
        argv += ["-k", keyword]
    return argv + list(extra)


def count_results(junit: Path) -> tuple[int, int, int, int]:
    """(passed, failed, errors, skipped) from a pytest JUnit XML file."""
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    totals = [sum(int(s.get(k, 0)) for s in suites)
              for k in ("tests", "failures", "errors", "skipped")]
    tests, failures, errors, skipped = totals
    return tests - failures - errors - skipped, failures, errors, skipped


def run_pytest(paths: list[Path], keyword: str | None = None, junit: Path | None = None,
               extra: tuple[str, ...] = ()) -> Outcome:
    """Run pytest on paths; raise HarnessError when nothing at all was collected."""
    with tempfile.TemporaryDirectory(prefix="mlab-junit-") as tmp:
        junit_path = junit or Path(tmp) / "junit.xml"
        junit_path.parent.mkdir(parents=True, exist_ok=True)
        # its own session: an interrupt reaches it once, from us, and it may clean up
        child = subprocess.Popen(pytest_argv(paths, keyword, junit_path, extra),
                                 start_new_session=True)
        code = interrupts.wait_for_child(child)
        if code == PYTEST_NO_TESTS:
            raise HarnessError(f"pytest collected no test in {' '.join(map(str, paths))}"
                               + (f" matching -k {keyword!r}" if keyword else ""))
        if not junit_path.exists():
            raise HarnessError(f"pytest exited with {code} before writing {junit_path}")
        return Outcome(code, *count_results(junit_path))


GUEST_TEST_TIMEOUT = 3600.0


def run_pytest_in_vm(vm, paths: list[Path], keyword: str | None = None,
                     junit: Path | None = None) -> Outcome:
    """Run pytest inside the VM (the project is at the same path there), output streamed
    here; JUnit XML copied to `junit`. Splats in the console fail the run (see `report`)."""
    from harness.paths import PROJECT_ROOT
    from harness.vm.kmsg import BUILD_RECORD_ENV, GUEST_ENV

    guest_junit = Path(vm.state.run_dir) / "guest" / "junit.xml"
    guest_junit.unlink(missing_ok=True)
    argv = pytest_argv(paths, keyword, guest_junit, ("-p", "no:cacheprovider"))
    record = vm.build_record_path()
    env = [f"{GUEST_ENV}=1", "PYTHONDONTWRITEBYTECODE=1",
           *([f"{BUILD_RECORD_ENV}={record}"] if record else [])]
    command = f"cd {shlex.quote(str(PROJECT_ROOT))} && {shlex.join(['env', *env, *argv])}"
    report = vm.run(command, GUEST_TEST_TIMEOUT, output=_echo)
    code = report.result.status
    if code == PYTEST_NO_TESTS:
        raise HarnessError(f"pytest collected no test in {' '.join(map(str, paths))}"
                           + (f" matching -k {keyword!r}" if keyword else ""))
    if not guest_junit.exists():
        raise HarnessError(f"pytest in the VM exited with {code} before writing {guest_junit}")
    if junit:
        junit.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(guest_junit, junit)
    if report.splats and code == 0:
        code = 1
    return Outcome(code, *count_results(guest_junit), splats=tuple(report.splats))


def _echo(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def lint() -> int:
    """ruff over the project's Python code; returns ruff's exit code."""
    from harness.paths import PROJECT_ROOT

    argv = [sys.executable, "-m", "ruff", "check", "harness", "tests", "tasks.py"]
    print("$ ruff check harness tests tasks.py", flush=True)
    return subprocess.call(argv, cwd=PROJECT_ROOT)


def host_target() -> str:
    return f"host kernel {platform.release()}"
