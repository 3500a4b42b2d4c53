"""Run pytest on a set of test paths and summarise the result in one line.

pytest runs as a child process so its output streams as usual; the JUnit XML it writes
(to the user's path or a temporary file) gives the counts for the closing line.
"""

from __future__ import annotations

import os
import platform
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
    evidence: Path | None = None  # reports/test-<time>/: what the failed tests left

    def summary(self, target: str) -> str:
        text = (f"{target}: {self.passed} passed, {self.failed + self.errors} failed, "
                f"{self.skipped} skipped")
        if self.splats:
            text += f", {len(self.splats)} kernel splat(s): " + "; ".join(map(str, self.splats))
        if self.evidence is not None:
            text += f"\nevidence (pcaps, MIB deltas, ss, console, output): {self.evidence}"
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
               extra: tuple[str, ...] = (), evidence: bool = False,
               keep_passing: bool = False) -> Outcome:
    """Run pytest on paths; raise HarnessError when nothing at all was collected.

    With evidence, what failed tests (all tests with keep_passing) leave is kept under
    reports/ (harness.evidence)."""
    from harness import evidence as kept

    with tempfile.TemporaryDirectory(prefix="mlab-junit-") as tmp:
        junit_path = junit or Path(tmp) / "junit.xml"
        junit_path.parent.mkdir(parents=True, exist_ok=True)
        written = Path(tmp) / "evidence"
        env = {**os.environ, **(kept.pytest_env(written, keep_passing) if evidence else {})}
        # its own session: an interrupt reaches it once, from us, and it may clean up
        child = subprocess.Popen(pytest_argv(paths, keyword, junit_path, extra),
                                 start_new_session=True, env=env)
        code = interrupts.wait_for_child(child)
        if code == PYTEST_NO_TESTS:
            raise HarnessError(f"pytest collected no test in {' '.join(map(str, paths))}"
                               + (f" matching -k {keyword!r}" if keyword else ""))
        if not junit_path.exists():
            raise HarnessError(f"pytest exited with {code} before writing {junit_path}")
        report_dir = kept.finish_run(written, junit) if evidence else None
        return Outcome(code, *count_results(junit_path), evidence=report_dir)


def lint() -> int:
    """ruff over the project's Python code; returns ruff's exit code."""
    from harness.paths import PROJECT_ROOT

    argv = [sys.executable, "-m", "ruff", "check", "harness", "tests", "tasks.py"]
    print("$ ruff check harness tests tasks.py", flush=True)
    return subprocess.call(argv, cwd=PROJECT_ROOT)


def host_target() -> str:
    return f"host kernel {platform.release()}"
