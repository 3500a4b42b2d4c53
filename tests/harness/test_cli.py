"""The command line as a user runs it: invoke tasks in a subprocess, and the pytest plugin
loaded through its entry point by a test file that lives outside this repository."""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from harness.paths import PROJECT_ROOT

INVOKE = [sys.executable, "-m", "invoke"]


def invoke(*args, timeout=120, env=None):
    return subprocess.run([*INVOKE, *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


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


def test_test_in_the_vm_without_a_kernel_says_to_build_one(tmp_path):
    proc = invoke("test", env={"INVOKE_CACHE_DIR": str(tmp_path)})
    assert proc.returncode != 0
    assert "no kernel image at" in proc.stderr and "invoke build" in proc.stderr
    assert not (tmp_path / "vm").exists()


def test_exec_and_shell_without_a_vm_say_how_to_start_one(tmp_path):
    for args in (("exec", "--cmd", "true"), ("shell",)):
        proc = invoke(*args, env={"INVOKE_CACHE_DIR": str(tmp_path)})
        assert proc.returncode == 1 and "invoke boot" in proc.stderr


def test_halt_without_a_vm_says_so(tmp_path):
    proc = invoke("halt", env={"INVOKE_CACHE_DIR": str(tmp_path)})
    assert proc.returncode == 0 and "none was running" in proc.stdout


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


@pytest.mark.parametrize("task", ["setup", "build", "boot", "exec", "shell", "halt", "test",
                                  "selftests", "kunit", "check", "oracle", "bench",
                                  "topo.check", "topo.up", "topo.down"])
def test_every_task_has_help(task):
    proc = invoke("--help", task)
    assert proc.returncode == 0 and "Docstring:" in proc.stdout
    assert "none" not in proc.stdout.split("Docstring:")[1].splitlines()[1].lower()


def test_dash_h_after_test_shows_its_help_and_runs_nothing():
    proc = invoke("test", "-h")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--host" in proc.stdout and "Run the MPTCP behaviour tests" in proc.stdout
    assert "passed" not in proc.stdout  # nothing ran


def test_capture_without_the_selftests_is_refused(tmp_path):
    proc = invoke("test", "--capture", env={"INVOKE_CACHE_DIR": str(tmp_path)})
    assert proc.returncode != 0
    assert "--capture is about the kernel's selftests: add --all" in proc.stderr


def test_repro_coverage_on_another_variant_is_refused_before_any_build(tmp_path):
    bundle = PROJECT_ROOT / "tests" / "vm" / "data" / "repro-warning"
    proc = invoke("repro", str(bundle), "--coverage", "--variant", "debug",
                  env={"INVOKE_CACHE_DIR": str(tmp_path)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--coverage needs the coverage variant, not --variant debug" in proc.stderr
    assert not (tmp_path / "build").exists()
