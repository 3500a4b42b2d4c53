"""Coverage on the host, with real gcc, gcov, make and lcov: the make variable that profiles
net/mptcp alone, counters collected per part as the guest lays them out, and the report
that says which part reached what."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.coverage import changes, guest, lcov, query, tracefile
from harness.coverage.compare import difference
from harness.coverage.report import CoverageError, combine, require_gcov, write
from harness.coverage.tables import summary_table
from harness.coverage.tracefile import FileCoverage
from harness.kernel.build import GCOV_MPTCP_ONLY, make_variables

SUB_MAKE = """\
ifeq ($(obj),net/ipv4)
GCOV_PROFILE := n
endif
all:
\t@echo "$(obj)=$(GCOV_PROFILE)"
"""
TOP_MAKE = """\
all:
\t@$(MAKE) -s -f sub.mk obj=net/mptcp
\t@$(MAKE) -s -f sub.mk obj=net/ipv4
\t@$(MAKE) -s -f sub.mk obj=kernel
"""


def test_the_make_variable_profiles_net_mptcp_and_nothing_else(tmp_path):
    """As Kbuild runs a sub-make per directory: the command-line variable reaches each one,
    is y in net/mptcp, and empty elsewhere even where a Makefile sets its own."""
    (tmp_path / "Makefile").write_text(TOP_MAKE)
    (tmp_path / "sub.mk").write_text(SUB_MAKE)
    made = subprocess.run(["make", "-s", "-C", str(tmp_path), GCOV_MPTCP_ONLY], check=True,
                          capture_output=True, text=True)
    assert made.stdout.split() == ["net/mptcp=y", "net/ipv4=", "kernel="]


def test_only_a_kernel_with_gcov_gets_the_variable(tmp_path):
    (tmp_path / ".config").write_text("# CONFIG_GCOV_KERNEL is not set\n")
    assert make_variables(tmp_path) == []
    (tmp_path / ".config").write_text("CONFIG_GCOV_KERNEL=y\n")
    assert make_variables(tmp_path) == [GCOV_MPTCP_ONLY]


PROGRAM = """\
int chosen(int x)
{
\tif (x > 0)
\t\treturn 1;
\treturn 2;
}

int never(void)
{
\treturn 3;
}

int main(int argc, char **argv)
{
\t(void)argv;
\treturn chosen(argc - 2) + (argc > 5 ? never() : 0);
}
"""


@pytest.fixture
def profiled_build(tmp_path):
    return build_profiled(tmp_path / "build")


def build_profiled(build: Path) -> Path:
    """A build directory with net/mptcp/prog.c compiled for gcov, as Kbuild does (.gcno
    beside the object)."""
    (build / "net/mptcp").mkdir(parents=True)
    (build / "net/mptcp/prog.c").write_text(PROGRAM)
    subprocess.run(["gcc", "--coverage", "-O0", "-c", "-o", "net/mptcp/prog.o",
                    "net/mptcp/prog.c"], cwd=build, check=True)
    subprocess.run(["gcc", "--coverage", "-o", "prog", "net/mptcp/prog.o"], cwd=build,
                   check=True)
    return build


def run_part(build: Path, tmp_path: Path, counters: Path, part: str, *args: str) -> None:
    """Run the program and collect its counters as the guest does: the .gcda files appear at
    the build's absolute path under a root (GCOV_PREFIX here, debugfs in the guest)."""
    root = tmp_path / f"root-{part}"
    subprocess.run([str(build / "prog"), *args], env={"GCOV_PREFIX": str(root)})
    assert guest.collect(counters / part, build, root=root) == 1


def test_a_report_tells_which_part_ran_each_function(profiled_build, tmp_path):
    counters = tmp_path / "counters"
    run_part(profiled_build, tmp_path, counters, "tests.mptcp.test_a.test_one")
    run_part(profiled_build, tmp_path, counters, "selftests.diag.sh", "x", "y")
    report = write(counters, profiled_build, "unit", reports=tmp_path / "reports")
    assert report.index.exists()
    data = tracefile.read(report.tracefile)
    assert sorted(data) == ["selftests_diag_sh", "tests_mptcp_test_a_test_one"]
    files = tracefile.union(data)
    [(source, coverage)] = files.items()
    assert source.endswith("net/mptcp/prog.c")
    assert coverage.hit_functions() == {"chosen", "main"}
    assert "never" in coverage.functions
    assert tracefile.tests_reaching(data, "chosen") == sorted(data)
    assert tracefile.tests_reaching(data, "never") == []
    # `return 1;` (line 4) ran only with two arguments: the selftest part
    ours = tracefile.union(data, {"tests_mptcp_test_a_test_one"})
    theirs = tracefile.union(data, {"selftests_diag_sh"})
    diff = difference(ours, theirs)
    assert diff.gained_lines == {"net/mptcp/prog.c": [4]}
    assert diff.lost_lines == {"net/mptcp/prog.c": [5]}
    assert "net/mptcp/prog.c" in report.summary and "2/3" in report.summary
    split = query.by_kind(data)
    assert "reached only by selftests: 1 lines" in split
    header, row = split.splitlines()[:2]
    assert header.split() == ["file", "tests/mptcp:", "lines", "/", "functions",
                              "selftests:", "lines", "/", "functions", "all:", "lines", "/",
                              "functions"]
    name, ours, _, ours_fn, theirs, _, theirs_fn, both, _, both_fn = row.split()
    assert name == "net/mptcp/prog.c"
    assert ours_fn == theirs_fn == both_fn == "66.7%"  # chosen and main of the three
    assert float(both[:-1]) > max(float(ours[:-1]), float(theirs[:-1]))
    assert "selftests_diag_sh" in query.reaching(data, "chosen")


def test_counters_of_another_build_are_refused(profiled_build, tmp_path):
    with pytest.raises(guest.NoCounters, match="--variant coverage"):
        guest.collect(tmp_path / "out", profiled_build, root=tmp_path / "empty-root")


def test_no_collected_part_is_an_error_not_an_empty_report(tmp_path):
    (tmp_path / "counters").mkdir()
    with pytest.raises(CoverageError, match="no gcov counters were collected"):
        write(tmp_path / "counters", tmp_path, "unit", reports=tmp_path / "reports")


def test_a_kernel_without_gcov_is_refused_with_the_variant_to_build(tmp_path):
    (tmp_path / ".config").write_text("# CONFIG_GCOV_KERNEL is not set\nCONFIG_DEBUG_FS=y\n")
    with pytest.raises(CoverageError, match="CONFIG_GCOV_KERNEL.*--variant coverage"):
        require_gcov(tmp_path)
    with pytest.raises(CoverageError, match="--variant coverage"):
        require_gcov(None)  # an image from outside our builds


def test_lcov_test_names_keep_only_what_lcov_accepts():
    assert lcov.test_name("selftests.mptcp_join.sh_-f") == "selftests_mptcp_join_sh__f"


def test_a_tracefile_line_that_is_not_lcov_is_named(tmp_path):
    bad = tmp_path / "bad.info"
    bad.write_text("TN:x\nSF:/a/net/mptcp/pm.c\nDA:twelve,1\nend_of_record\n")
    with pytest.raises(tracefile.TracefileError, match="bad.info:3"):
        tracefile.read(bad)


def test_the_summary_counts_lines_functions_and_branches_per_file(tmp_path):
    info = tmp_path / "t.info"
    info.write_text("TN:a\nSF:/b/net/mptcp/pm.c\nFN:3,f\nFNDA:2,f\nFN:9,g\nFNDA:0,g\n"
                    "BRDA:4,0,0,1\nBRDA:4,0,1,-\nDA:3,2\nDA:4,2\nDA:9,0\nend_of_record\n"
                    "TN:b\nSF:/b/net/mptcp/pm.c\nFNDA:1,g\nDA:9,1\nend_of_record\n")
    table = summary_table(tracefile.union(tracefile.read(info))).splitlines()
    assert table[1].split() == ["net/mptcp/pm.c", "3/3", "100.0%", "2/2", "100.0%",
                                "1/2", "50.0%"]
    assert table[-1].split()[0] == "total"


BEFORE = "one\ntwo\nthree\nfour\nfive\n"
AFTER = "one\nTWO\nthree\nfour\nfour and a half\nfour and three quarters\n"


@pytest.fixture
def changed_tree(tmp_path):
    """An unpatched tree and a patched one: a.c with line 2 modified, two lines added after
    line 4 and line 5 removed; b.c new."""
    base, tree = tmp_path / "pristine", tmp_path / "patched"
    for root, text in ((base, BEFORE), (tree, AFTER)):
        (root / "net/mptcp").mkdir(parents=True)
        (root / "net/mptcp/a.c").write_text(text)
    (tree / "net/mptcp/b.c").write_text("x\ny\nz\n")
    return base, tree


EXPECTED_CHANGE = {"net/mptcp/a.c": {2, 5, 6}, "net/mptcp/b.c": {1, 2, 3}}


def test_the_lines_a_series_changed_are_those_of_the_patched_side(changed_tree):
    base, tree = changed_tree
    assert changes.changed_lines(tree, str(base)) == EXPECTED_CHANGE
    assert changes.default_base(tree) == base  # the pristine copy beside the patched one


def test_a_change_against_a_git_revision_reads_git_diff(changed_tree):
    base, tree = changed_tree
    git = ["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    (tree / "net/mptcp/a.c").write_text(BEFORE)
    (tree / "net/mptcp/b.c").rename(tree / "b.c.later")
    subprocess.run([*git, "add", "-A", "net"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    (tree / "net/mptcp/a.c").write_text(AFTER)
    (tree / "b.c.later").rename(tree / "net/mptcp/b.c")
    subprocess.run([*git, "add", "-A", "net"], check=True)
    subprocess.run([*git, "commit", "-qm", "change"], check=True)
    assert changes.changed_lines(tree, "HEAD~1") == EXPECTED_CHANGE
    with pytest.raises(CoverageError, match="no-such-rev"):
        changes.changed_lines(tree, "no-such-rev")


def test_a_tree_without_an_unpatched_copy_needs_a_base(tmp_path):
    with pytest.raises(CoverageError, match="--base"):
        changes.default_base(tmp_path / "tree")


def test_only_changed_lines_that_run_code_count_and_the_unreached_are_listed():
    coverage = FileCoverage(lines={2: 3, 5: 0, 6: 0, 9: 4})  # line 1 of b.c: no code
    rows = changes.change_coverage({"/src/patched/net/mptcp/a.c": coverage},
                                   EXPECTED_CHANGE)
    a, b = rows
    assert (a.instrumented, a.reached, a.unreached) == ([2, 5, 6], [2], [5, 6])
    assert (b.changed, b.instrumented) == (3, [])
    text = changes.change_text(rows, "base")
    assert "lines changed against base: 6, of which 3 run code; reached: 1 (33.3%)" in text
    assert "net/mptcp/a.c: 3 changed, 3 run code, 1 reached; not reached: 5-6" in text


def test_line_ranges_are_compressed():
    assert changes.ranges([1, 2, 3, 7, 9, 10]) == "1-3, 7, 9-10"
    assert changes.ranges([]) == ""


def test_reports_of_two_runs_merge_into_one_with_every_part(profiled_build, tmp_path):
    """tests/mptcp in one run, the selftests in another: one report of both, by part."""
    for run, part, args in (("ours", "tests.mptcp.test_a.test_one", ()),
                            ("theirs", "selftests.diag.sh", ("x", "y"))):
        run_part(profiled_build, tmp_path, tmp_path / run, part, *args)
    ours = write(tmp_path / "ours", profiled_build, "ours", reports=tmp_path / "r1")
    theirs = write(tmp_path / "theirs", profiled_build, "theirs", reports=tmp_path / "r2")

    both = combine([ours.directory, theirs.tracefile], "both", root=tmp_path / "r3")
    data = tracefile.read(both.tracefile)
    assert sorted(data) == ["selftests_diag_sh", "tests_mptcp_test_a_test_one"]
    [merged] = tracefile.union(data).values()
    [alone_ours] = tracefile.union(tracefile.read(ours.tracefile)).values()
    [alone_theirs] = tracefile.union(tracefile.read(theirs.tracefile)).values()
    # line 4 (`return 1;`) ran only in their run, line 5 only in ours: both are in the merge
    assert merged.hit_lines() == alone_ours.hit_lines() | alone_theirs.hit_lines()
    assert {4, 5} <= merged.hit_lines()
    assert both.index.exists() and "6/8" in both.summary and "3/4" in both.summary


def test_reports_of_different_trees_are_not_merged(profiled_build, tmp_path):
    run_part(profiled_build, tmp_path, tmp_path / "a", "kunit")
    first = write(tmp_path / "a", profiled_build, "a", reports=tmp_path / "r1")
    other = build_profiled(tmp_path / "elsewhere")  # the same sources in another tree
    run_part(other, tmp_path, tmp_path / "b", "kunit")
    second = write(tmp_path / "b", other, "b", reports=tmp_path / "r2")
    with pytest.raises(CoverageError, match="different kernel trees"):
        combine([first.directory, second.directory], "both", root=tmp_path / "r3")
