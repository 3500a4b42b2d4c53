"""The build flow (configure, make, record) against a stand-in make and a tiny tree.

tests/harness/data/kernel/fake-make plays Kbuild: these tests check what build.py decides
(when to configure, when to run make, what it records and reports), not the kernel.
"""

import os
import time
from pathlib import Path

import pytest

from harness.kernel.build import BuildRequest, build
from harness.kernel.errors import KernelError
from harness.kernel.kconfig import ConfigDropped
from harness.kernel.patches import applied_series
from harness.kernel.record import RECORD_FILE

# vmlinux with ccache, then the bzImage around it without (piggy.S's .incbin payload)
MAKE = ["vmlinux", "bzImage ccache-off"]

DATA = Path(__file__).parent / "data" / "kernel"


@pytest.fixture
def tree(tmp_path, fake_make):
    """A kernel-shaped tree, and `make` on PATH being the fake one."""
    linux = tmp_path / "linux"
    (linux / "net" / "mptcp").mkdir(parents=True)
    (linux / "Makefile").write_text("# top Makefile\n")
    (linux / "net" / "mptcp" / "ctrl.c").write_text("int x;\n")
    return linux


def request(tmp_path, tree, **kwargs):
    return BuildRequest(cache=tmp_path / "cache", tree=str(tree), jobs=2, **kwargs)


def make_calls(result) -> list[str]:
    return (result.build_dir / "fake-make.log").read_text().splitlines()


def test_first_build_configures_builds_and_records(tmp_path, tree):
    result = build(request(tmp_path, tree))
    assert make_calls(result) == ["allnoconfig", "olddefconfig", *MAKE]
    assert Path(result.record.image).read_bytes().startswith(b"kernel ")
    assert (result.build_dir / RECORD_FILE).exists() and result.log.exists()
    assert "CONFIG_MPTCP=y" in (result.build_dir / ".config").read_text()


def test_nothing_changed_returns_at_once_without_make(tmp_path, tree):
    first = build(request(tmp_path, tree))
    start = time.monotonic()
    again = build(request(tmp_path, tree))
    assert time.monotonic() - start < 1.0
    assert again.log is None and again.record == first.record
    assert make_calls(again) == ["allnoconfig", "olddefconfig", *MAKE]  # no new call


def test_a_config_item_reconfigures_then_make_decides(tmp_path, tree):
    build(request(tmp_path, tree))
    result = build(request(tmp_path, tree, config_items=("CONFIG_NR_CPUS=4",)))
    assert make_calls(result)[4:] == ["allnoconfig", "olddefconfig", *MAKE]
    assert "CONFIG_NR_CPUS=4" in (result.build_dir / ".config").read_text()


def test_a_changed_tree_runs_make_but_keeps_the_config(tmp_path, tree):
    build(request(tmp_path, tree))
    os.utime(tree, (1_000_000, 1_000_000))  # an unversioned tree is identified by its mtime
    result = build(request(tmp_path, tree))
    assert result.log is not None
    assert make_calls(result)[4:] == MAKE


def test_a_dropped_option_is_named_and_no_make_runs(tmp_path, tree, monkeypatch):
    monkeypatch.setenv("FAKE_MAKE_DROP", "CONFIG_LKDTM,CONFIG_MPTCP_KUNIT_TEST")
    with pytest.raises(ConfigDropped) as info:
        build(request(tmp_path, tree))
    text = str(info.value)
    assert "2 requested kernel option(s) did not survive olddefconfig" in text
    assert "CONFIG_LKDTM=y (got not set)" in text
    assert "CONFIG_MPTCP_KUNIT_TEST=y (got not set)" in text
    build_dir = next(p for p in (tmp_path / "cache" / "build").iterdir() if p.is_dir())
    assert "vmlinux" not in (build_dir / "fake-make.log").read_text()
    assert not (build_dir / RECORD_FILE).exists()


def test_a_compiler_error_shows_the_first_errors_and_the_log(tmp_path, tree, monkeypatch):
    monkeypatch.setenv("FAKE_MAKE_FAIL", "1")
    with pytest.raises(KernelError) as info:
        build(request(tmp_path, tree))
    text = str(info.value)
    assert "kernel build failed (make exit 2)" in text
    assert "net/mptcp/ctrl.c:12:5: error: 'x' undeclared" in text
    assert "In function 'mptcp_init'" in text and "full log: " in text
    log = Path(text.rsplit("full log: ", 1)[1].strip())
    assert "error: 'x' undeclared" in log.read_text()


def test_an_unknown_variant_fails_before_any_work(tmp_path, tree):
    with pytest.raises(KernelError, match="unknown --variant 'fast': use one of normal, debug"):
        build(request(tmp_path, tree, variant="fast"))
    assert not (tmp_path / "cache" / "build").exists()



@pytest.fixture
def patchable_tree(tree):
    """The tree, with the files our test series (data/kernel/series-v*) patch."""
    for name in ("protocol.c", "ctrl.c"):
        (tree / "net" / "mptcp" / name).write_text((DATA / f"base-{name}").read_text())
    return tree


def test_an_up_to_date_build_takes_its_series_back_from_another_build(tmp_path,
                                                                       patchable_tree):
    """Builds share the working copy: after a build of another series there (another
    purpose, another build directory), the first build puts its own series back and makes."""
    v1, v2 = DATA / "series-v1", DATA / "series-v2"
    first = build(request(tmp_path, patchable_tree, patches_dir=v1))
    other = build(request(tmp_path, patchable_tree, patches_dir=v2, purpose="repro"))
    assert other.build_dir != first.build_dir
    work = next((tmp_path / "cache" / "src").iterdir()) / "patched"  # the one working copy
    assert applied_series(work) == other.record.patches

    again = build(request(tmp_path, patchable_tree, patches_dir=v1))
    assert again.log is not None, "an up-to-date record must not hide another series' tree"
    assert make_calls(again)[-len(MAKE):] == MAKE and len(make_calls(again)) > 2 + len(MAKE)
    assert applied_series(work) == first.record.patches
    assert build(request(tmp_path, patchable_tree, patches_dir=v1)).log is None  # now at once


KCONFIG_PATCH = """From 3333333333333333333333333333333333333333 Mon Sep 17 00:00:00 2001
From: mptcp-lab <lab@example.invalid>
Subject: [PATCH] mptcp: add an option of the series

---
 net/mptcp/Kconfig | 3 +++
 1 file changed, 3 insertions(+)

diff --git a/net/mptcp/Kconfig b/net/mptcp/Kconfig
new file mode 100644
--- /dev/null
+++ b/net/mptcp/Kconfig
@@ -0,0 +1,3 @@
+config MPTCP_EXTRA_SCHEDULERS
+	bool "MPTCP: in-kernel packet schedulers besides the default one"
+
--
2.39.5
"""


def test_an_option_of_the_series_is_asked_for_once_the_tree_defines_it(tmp_path, tree):
    """The series fragment's option: left out while the tree lacks its patch (no error),
    asked for when the patch is in, although the requested options did not change."""
    series = tmp_path / "series-kconfig"
    series.mkdir()
    (series / "0001-mptcp-add-an-option-of-the-series.patch").write_text(KCONFIG_PATCH)
    (series / "series").write_text("0001-mptcp-add-an-option-of-the-series.patch\n")
    option = "CONFIG_MPTCP_EXTRA_SCHEDULERS=y"

    before = build(request(tmp_path, tree, patches_dir=series, series_limit=0))
    assert option not in (before.build_dir / ".config").read_text()
    calls_before = len(make_calls(before))
    after = build(request(tmp_path, tree, patches_dir=series))
    assert after.record.config == before.record.config  # the same options were requested
    assert make_calls(after)[calls_before:][:2] == ["allnoconfig", "olddefconfig"]
    assert option in (after.build_dir / ".config").read_text()
