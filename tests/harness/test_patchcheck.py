"""invoke patches.check: checkpatch verdicts, and a build after each patch in turn.

The builds use the stand-in make of test_kernel_build.py on a tiny tree; checkpatch's own
outputs were captured from the real script (tests/harness/data/checkpatch/).
"""

import shutil
from pathlib import Path

import pytest

from harness.kernel import patchcheck
from harness.kernel.build import BuildRequest
from harness.kernel.errors import KernelError

DATA = Path(__file__).parent / "data"
KERNEL = DATA / "kernel"


@pytest.fixture
def tree(tmp_path, monkeypatch, fake_make):
    """A tree the test series apply to, with a checkpatch stand-in; make is the fake one."""
    monkeypatch.setenv("FAKE_CHECKPATCH_DATA", str(DATA / "checkpatch"))
    linux = tmp_path / "linux"
    (linux / "net" / "mptcp").mkdir(parents=True)
    (linux / "scripts").mkdir()
    (linux / "Makefile").write_text("# top Makefile\n")
    shutil.copy(KERNEL / "base-protocol.c", linux / "net" / "mptcp" / "protocol.c")
    shutil.copy(KERNEL / "base-ctrl.c", linux / "net" / "mptcp" / "ctrl.c")
    shutil.copy(KERNEL / "fake-checkpatch.pl", linux / "scripts" / "checkpatch.pl")
    return linux


def check(tmp_path, tree, series, **kwargs):
    request = BuildRequest(cache=tmp_path / "cache", tree=str(tree), jobs=2,
                           patches_dir=KERNEL / series)
    return patchcheck.check_series(request, **kwargs), request


def builds_made(tmp_path) -> int:
    (log,) = (tmp_path / "cache" / "build").glob("*/fake-make.log")
    return log.read_text().splitlines().count("bzImage ccache-off")


def test_each_patch_is_checked_then_built_in_turn(tmp_path, tree):
    reports, _ = check(tmp_path, tree, "series-v1")
    assert [r.name for r in reports] == ["0001-mptcp-answer-correctly.patch",
                                         "0002-mptcp-tune-fallback.patch"]
    assert all(r.ok for r in reports)
    assert all(r.checkpatch == "0 errors, 0 warnings, 0 checks" for r in reports)
    assert builds_made(tmp_path) == 2
    assert patchcheck.first_broken(reports) is None


def test_a_patch_that_does_not_apply_is_the_first_broken_one(tmp_path, tree):
    reports, _ = check(tmp_path, tree, "series-broken")
    assert reports[0].build_ok is True
    broken = patchcheck.first_broken(reports)
    assert broken is reports[1] and broken.build == "does not apply"
    assert "0002-mptcp-stale.patch" in broken.build_errors[0]


def test_a_build_failure_stops_the_walk_at_that_patch(tmp_path, tree, monkeypatch):
    monkeypatch.setenv("FAKE_MAKE_FAIL", "1")
    reports, _ = check(tmp_path, tree, "series-v1")
    assert patchcheck.first_broken(reports) is reports[0]
    assert any("error:" in line for line in reports[0].build_errors)
    assert reports[1].build == "not built" and reports[1].build_ok is None
    assert "FAILED" in patchcheck.table(reports) and "not built" in patchcheck.table(reports)


def test_checkpatch_only_builds_nothing(tmp_path, tree):
    reports, _ = check(tmp_path, tree, "series-v1", build_each=False)
    assert all(r.checkpatch_clean and r.build_ok is None for r in reports)
    assert not (tmp_path / "cache" / "build").exists()


def test_style_problems_are_counted_and_shown(tmp_path, tree):
    series = tmp_path / "series-bad"
    shutil.copytree(KERNEL / "series-v1", series)
    patch = series / "0002-mptcp-tune-fallback.patch"
    patch.write_text(patch.read_text().replace("\n---\n", "\nBADSTYLE\n---\n", 1))
    request = BuildRequest(cache=tmp_path / "cache", tree=str(tree), patches_dir=series)
    reports = patchcheck.check_series(request, build_each=False)
    assert reports[0].checkpatch_clean and not reports[1].checkpatch_clean
    assert reports[1].checkpatch == "3 errors, 3 warnings, 0 checks"
    assert "ERROR: open brace '{' following function definitions" in reports[1].checkpatch_output


def test_an_empty_series_is_an_error(tmp_path, tree):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "series").write_text("# nothing yet\n")
    with pytest.raises(KernelError, match="series is empty"):
        check(tmp_path, tree, empty)


def test_real_checkpatch_summaries_parse():
    clean = (DATA / "checkpatch" / "clean.txt").read_text()
    problems = (DATA / "checkpatch" / "style-problems.txt").read_text()
    assert patchcheck.SUMMARY.search(clean).groups() == ("0", "0", "0")
    assert patchcheck.SUMMARY.search(problems).groups() == ("3", "3", "0")


@pytest.mark.parametrize("git_tree", [False, True])
def test_upstream_commit_ids_are_looked_up_only_in_a_git_tree(tmp_path, git_tree):
    """Debian's tree has no history: checkpatch would call every upstream "commit <id>" in
    a commit message unknown. In a git tree, the lookup stays on."""
    linux = tmp_path / "linux"
    (linux / "scripts").mkdir(parents=True)
    if git_tree:
        (linux / ".git").mkdir()
    (linux / "scripts" / "checkpatch.pl").write_text(
        'print "args: @ARGV\\ntotal: 0 errors, 0 warnings, 0 checks, 1 lines checked\\n";\n')
    patch = tmp_path / "0001-x.patch"
    patch.write_text("Subject: [PATCH] x\n")
    clean, _summary, output = patchcheck.checkpatch(linux, patch)
    assert clean
    assert ("--ignore UNKNOWN_COMMIT_ID" in output) is not git_tree, output
