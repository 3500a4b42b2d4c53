"""The plugin's collection scope: pytest, given paths, looks at nothing outside them (a
conftest hook records every file that reaches pytest_collect_file), and collects the same
tests as without the plugin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.paths import PROJECT_ROOT

RECORDER = """\
import os

def pytest_collect_file(file_path, parent):
    with open(os.environ["SEEN_FILE"], "a") as seen:
        seen.write(f"{file_path.relative_to(parent.config.rootpath)}\\n")
"""


@pytest.fixture
def tree(tmp_path) -> Path:
    (tmp_path / "pytest.ini").write_text("[pytest]\ntestpaths = a b\n")
    (tmp_path / "conftest.py").write_text(RECORDER)
    for name in ("a/test_one.py", "a/test_two.py", "b/test_three.py", "b/deep/test_four.py"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("def test_it():\n    pass\n")
    return tmp_path


def collect(tree: Path, *args: str, plugin: bool = True) -> tuple[list[str], set[str]]:
    """(the test ids collected, the files that reached pytest_collect_file)."""
    seen = tree / "seen.txt"
    seen.unlink(missing_ok=True)
    env = {**os.environ, "SEEN_FILE": str(seen), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
           "PYTHONPATH": str(PROJECT_ROOT)}
    plugin_args = ["-p", "harness.pytest_plugin"] if plugin else []
    done = subprocess.run([sys.executable, "-m", "pytest", *plugin_args, "-p",
                           "no:cacheprovider", "--collect-only", "-q", *args],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    return ids, set(seen.read_text().split()) if seen.exists() else set()


def test_a_file_given_is_the_only_file_looked_at(tree):
    ids, seen = collect(tree, "a/test_two.py")
    assert ids == ["a/test_two.py::test_it"]
    assert seen == {"a/test_two.py"}
    assert collect(tree, "a/test_two.py", plugin=False)[1] >= {"a/test_one.py", "conftest.py"}


def test_a_directory_given_is_looked_at_whole(tree):
    ids, seen = collect(tree, "b", "a/test_one.py::test_it")
    assert ids == collect(tree, "b", "a/test_one.py::test_it", plugin=False)[0]
    assert sorted(ids) == ["a/test_one.py::test_it", "b/deep/test_four.py::test_it",
                           "b/test_three.py::test_it"]
    assert seen == {"b/test_three.py", "b/deep/test_four.py", "a/test_one.py"}


def test_without_paths_collection_is_pytests_own(tree):
    assert collect(tree) == collect(tree, plugin=False)


def test_the_guests_pytest_has_our_plugin_without_entry_points(tree):
    """harness.runs.guest_pytest: pytest with the plugin registered as a module, as the VM
    runs it (entry points not loaded)."""
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "SEEN_FILE": os.devnull,
           "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run([sys.executable, "-m", "harness.runs.guest_pytest", "--fixtures",
                           "-q", "a/test_one.py"], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "mptcp_kernel" in done.stdout and "topology" in done.stdout
    bare = subprocess.run([sys.executable, "-m", "pytest", "--fixtures", "-q", "a/test_one.py"],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=120)
    assert "mptcp_kernel" not in bare.stdout  # so the launcher is what brought it
