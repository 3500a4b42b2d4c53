"""The patch series mechanism on a tiny tree: incremental, atomic, base never touched."""

import os
import shutil
from pathlib import Path

import pytest

from harness.kernel.errors import KernelError
from harness.kernel.patches import (
    PatchFailed,
    apply_series,
    ensure_working_copy,
    files_of,
    read_series,
)
from harness.kernel.record import BuildRecord
from harness.kernel.selftests_build import SelftestBuildError, check_same_series

DATA = Path(__file__).parent / "data" / "kernel"
PROTOCOL, CTRL = "net/mptcp/protocol.c", "net/mptcp/ctrl.c"


@pytest.fixture
def trees(tmp_path):
    base = tmp_path / "pristine"
    (base / "net" / "mptcp").mkdir(parents=True)
    (base / "Makefile").write_text("# top Makefile\n")
    shutil.copy(DATA / "base-protocol.c", base / PROTOCOL)
    shutil.copy(DATA / "base-ctrl.c", base / CTRL)
    (base / "net" / "mptcp" / "options.c").write_text("/* untouched */\n")
    old = 1_000_000_000  # the base is old, like an unpacked tarball
    for path in base.rglob("*"):
        os.utime(path, (old, old))
    work = tmp_path / "patched"
    ensure_working_copy(base, work)
    return base, work


def snapshot(tree: Path) -> dict[str, tuple[bytes, int, int]]:
    return {str(p.relative_to(tree)): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino)
            for p in sorted(tree.rglob("*")) if p.is_file() and not p.name.startswith(".mlab")}


def test_series_file_order_comments_and_files():
    series = read_series(DATA / "series-v1")
    assert [p.name for p in series] == ["0001-mptcp-answer-correctly.patch",
                                        "0002-mptcp-tune-fallback.patch"]
    assert series[0].files == (PROTOCOL,) and series[1].files == (CTRL,)


def test_missing_patch_names_the_series_line(tmp_path):
    (tmp_path / "series").write_text("# header\n\nnot-there.patch\n")
    with pytest.raises(KernelError, match=r"series:3: patch not-there.patch does not exist"):
        read_series(tmp_path)


def test_files_of_ignores_dev_null():
    assert files_of("--- /dev/null\n+++ b/net/mptcp/new.c\n") == ("net/mptcp/new.c",)


def test_working_copy_is_hard_links_to_the_base(trees):
    base, work = trees
    assert (work / PROTOCOL).stat().st_ino == (base / PROTOCOL).stat().st_ino


def test_applying_changes_only_the_patched_files_and_never_the_base(trees):
    base, work = trees
    base_before = snapshot(base)
    changed = apply_series(base, work, read_series(DATA / "series-v1"))
    assert sorted(changed) == [CTRL, PROTOCOL]
    assert "return 42;" in (work / PROTOCOL).read_text()
    assert "= 3;" in (work / CTRL).read_text()
    assert snapshot(base) == base_before
    untouched = work / "net" / "mptcp" / "options.c"
    assert untouched.stat().st_ino == (base / "net" / "mptcp" / "options.c").stat().st_ino


def test_reapplying_the_same_series_changes_nothing(trees):
    base, work = trees
    series = read_series(DATA / "series-v1")
    apply_series(base, work, series)
    before = snapshot(work)
    assert apply_series(base, work, series) == []
    assert snapshot(work) == before  # same bytes, same mtimes: make rebuilds nothing


def test_changing_one_patch_rewrites_only_its_file(trees):
    base, work = trees
    apply_series(base, work, read_series(DATA / "series-v1"))
    before = snapshot(work)
    changed = apply_series(base, work, read_series(DATA / "series-v2"))
    after = snapshot(work)
    assert changed == [CTRL]
    assert after[PROTOCOL] == before[PROTOCOL]
    assert "= 4;" in (work / CTRL).read_text() and after[CTRL][1] > before[CTRL][1]


def test_dropping_a_patch_restores_the_base_content_with_a_new_mtime(trees):
    base, work = trees
    apply_series(base, work, read_series(DATA / "series-v1"))
    patched_mtime = (work / CTRL).stat().st_mtime_ns
    (work.parent / "one").mkdir()
    shutil.copy(DATA / "series-v1" / "0001-mptcp-answer-correctly.patch", work.parent / "one")
    (work.parent / "one" / "series").write_text("0001-mptcp-answer-correctly.patch\n")
    changed = apply_series(base, work, read_series(work.parent / "one"))
    assert changed == [CTRL]
    assert (work / CTRL).read_bytes() == (base / CTRL).read_bytes()
    assert (work / CTRL).stat().st_mtime_ns >= patched_mtime  # newer than objects built before


def test_a_failing_patch_names_patch_file_and_hunk_and_changes_nothing(trees):
    base, work = trees
    apply_series(base, work, read_series(DATA / "series-v1"))
    before, base_before = snapshot(work), snapshot(base)
    with pytest.raises(PatchFailed) as info:
        apply_series(base, work, read_series(DATA / "series-broken"))
    text = str(info.value)
    assert "0002-mptcp-stale.patch" in text and PROTOCOL in text and "Hunk #1 FAILED" in text
    assert snapshot(work) == before and snapshot(base) == base_before


def test_a_selftests_build_refuses_a_working_copy_another_series_went_into(trees, tmp_path):
    """Builds share the working copy: the selftests of a kernel built with series-v1 must not
    be built from the tree after a later build applied series-v2 there."""
    base, work = trees
    v1 = read_series(DATA / "series-v1")
    apply_series(base, work, v1)
    build_dir = tmp_path / "build" / "x-normal"
    build_dir.mkdir(parents=True)
    BuildRecord("src", [[p.name, p.sha256] for p in v1], "cfg", "img", "vmlinux").save(build_dir)
    check_same_series(build_dir, work)  # the same series: fine

    apply_series(base, work, read_series(DATA / "series-v2"))
    with pytest.raises(SelftestBuildError, match=r"now holds another series \(0001-.*a later "
                                                 r"build re-patched it"):
        check_same_series(build_dir, work)
    check_same_series(build_dir, base)  # a tree no series went into: nothing to compare
