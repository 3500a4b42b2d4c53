"""The command line as a user runs it: invoke tasks in a subprocess, and the pytest plugin
loaded through its entry point by a test file that lives outside this repository."""

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from harness.paths import PROJECT_ROOT

INVOKE = [sys.executable, "-m", "invoke"]


def invoke(*args, timeout=120):
    return subprocess.run([*INVOKE, *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_test_task_runs_selected_tests_writes_junit_and_a_summary(tmp_path, mptcp_kernel):
    junit = tmp_path / "out" / "junit.xml"
    proc = invoke("test", "--host", "-k", "disabled_mptcp", "--junit", str(junit))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1].endswith(": 2 passed, 0 failed, 0 skipped")
    cases = ET.parse(junit).getroot().iter("testcase")
    assert len([c for c in cases if "disabled" in c.get("name")]) == 2


def test_no_test_collected_is_a_failure():
    proc = invoke("test", "--host", "-k", "no_such_test_name_anywhere")
    assert proc.returncode != 0
    assert "collected no test" in proc.stderr


def test_test_task_without_a_target_says_what_to_do():
    proc = invoke("test")
    assert proc.returncode == 2 and "--host" in proc.stderr


def test_the_plugin_serves_tests_outside_the_repository(tmp_path):
    (tmp_path / "test_mine.py").write_text(
        "def test_counters(mib):\n"
        "    assert mib(None).groups\n"
    )
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(tmp_path)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_unknown_benchmark_is_named():
    proc = invoke("bench", "--only", "nope")
    assert proc.returncode == 2 and "unknown benchmark 'nope'" in proc.stderr


@pytest.mark.parametrize("task", ["setup", "test", "check", "bench", "topo.check", "topo.up",
                                  "topo.down"])
def test_every_task_has_help(task):
    proc = invoke("--help", task)
    assert proc.returncode == 0 and "Docstring:" in proc.stdout
    assert "none" not in proc.stdout.split("Docstring:")[1].splitlines()[1].lower()
