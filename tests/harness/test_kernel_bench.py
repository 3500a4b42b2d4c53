"""The build benchmark's one-file change: it applies, and it is code, not a comment (ccache
would serve a comment-only change from its cache and the measurement would skip gcc)."""

import shutil
from pathlib import Path

from harness.bench.build_times import ONE_FILE, one_file_patch
from harness.run import run

DATA = Path(__file__).parent / "data" / "kernel"


def test_the_one_file_patch_applies_and_changes_code(tmp_path):
    target = tmp_path / ONE_FILE
    target.parent.mkdir(parents=True)
    shutil.copy(DATA / "base-ctrl.c", target)
    before = target.read_text()
    patch = tmp_path / "one.patch"
    patch.write_text(one_file_patch(tmp_path, "run-7"))
    run(["patch", "-p1", "--batch", "-d", str(tmp_path), "-i", str(patch)])
    after = target.read_text()
    assert after.startswith(before)
    added = after[len(before):].strip()
    assert added.startswith("static const char") and '"run-7"' in added
    assert not added.startswith(("/*", "//"))
