"""A non-editable install (`pip install .`) copies only the Python package: using it must
fail with a message that says so, not with a missing file deep inside a run."""

import shutil
import subprocess
import sys

from harness.paths import PROJECT_ROOT


def test_a_non_editable_install_is_refused_with_the_reason(tmp_path):
    source = tmp_path / "source"  # pip builds in the source tree: not in our checkout
    shutil.copytree(PROJECT_ROOT / "harness", source / "harness",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--disable-pip-version-check", "--target", str(target), str(source)],
                   check=True, capture_output=True, cwd=tmp_path, timeout=300)
    probe = ("from harness.topology import load_named\n"
             "load_named('two-paths')\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=tmp_path, env={"PYTHONPATH": str(target)}, timeout=60)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "TopologyError" in last and "pip install -e ." in last, proc.stderr
    assert f"{target}/harness/.." not in last and str(target) in last
