"""TAP/KTAP parsing: captured outputs of the kernel's MPTCP selftests and KUnit, truncated
and broken output, the kselftest exit code rules."""

import textwrap
from pathlib import Path

import pytest

from harness.report.ktap import (
    SCRIPT_STOPPED,
    Case,
    ScriptResult,
    leaves,
    parse_ktap,
    parse_selftest,
)

DATA = Path(__file__).parent / "data" / "tap"


def read(name: str) -> str:
    return (DATA / name).read_text()


def by_number(result: ScriptResult) -> dict[int, Case]:
    return {case.number: case for case in result.cases if case.number is not None}


def test_diag_with_skips():
    result = parse_selftest("diag.sh", read("diag-skip.out"), 0, 90.0)
    assert len(result.cases) == 29
    assert (result.passed, result.failed, result.skipped) == (26, 0, 3)
    assert result.status == "pass"
    skips = [c for c in result.cases if c.status == "skip"]
    assert [c.number for c in skips] == [7, 8, 9]
    assert {c.reason for c in skips} == {"Feature probably not supported"}
    assert skips[0].name == "diag: ....chk last_data_sent"
    assert skips[0].output.startswith("07 ....chk last_data_sent")
    assert skips[0].duration_s == pytest.approx(1.805)


def test_durations_come_from_time_not_from_the_reason():
    cases = by_number(parse_selftest("diag.sh", read("diag-skip.out"), 0, 90.0))
    assert cases[1].duration_s == pytest.approx(2.139)
    assert cases[1].name == "diag: no msk on netns creation"
    assert cases[1].reason == ""
    assert cases[21].duration_s == pytest.approx(39.646)


def test_diag_with_a_failure():
    result = parse_selftest("diag.sh", read("diag-fail.out"), 1, 150.0)
    cases = by_number(result)
    assert len(result.cases) == 29  # the failure explains exit code 1: no extra case
    assert (result.passed, result.failed, result.skipped) == (24, 1, 4)
    assert result.status == "fail"
    assert cases[22].status == "skip"
    assert cases[23].status == "fail"
    assert cases[23].reason == "expected 200 found 0"
    assert "23 ....chk many cestab" in cases[23].output
    assert "[FAIL] expected 200 found 0" in cases[23].output
    assert "kill: No such process" not in cases[29].output


def test_mptcp_join_blocks_span_their_check_lines():
    result = parse_selftest("mptcp_join.sh -f", read("mptcp_join-f.out"), 0, 140.0)
    assert (result.passed, result.failed, result.skipped) == (7, 0, 0)
    assert all("join Rx" in case.output for case in result.cases)
    first = result.cases[0]
    assert first.name == "mptcp_join: no JOIN"
    assert first.output.splitlines()[0] == "001 no JOIN"
    assert first.output.count("join") == 2 and "002" not in first.output
    assert "TAP version" not in result.cases[-1].output


def test_mptcp_connect_progress_lines_go_to_their_result():
    result = parse_selftest("mptcp_connect.sh", read("mptcp_connect.out"), 0, 881.0)
    assert (result.passed, result.failed, result.skipped) == (68, 0, 0)
    cases = by_number(result)
    assert cases[3].name == "mptcp_connect: loopback v4: ns1 MPTCP -> ns1 (10.0.1.1:10000) MPTCP"
    assert cases[3].output.startswith("03 ns1 MPTCP -> ns1 (10.0.1.1:10000 ")
    assert cases[3].duration_s == pytest.approx(6.766)
    assert "INFO: tproxy ipv4 pass" in cases[61].output
    assert all(case.output.startswith(f"{n:02d} ") for n, case in cases.items())
    assert "Created /tmp" not in cases[1].output  # set-up lines before 01 belong to no case


def test_kunit_debugfs_results():
    (suite,) = parse_ktap(read("kunit-mptcp-token.ktap"))
    assert (suite.name, suite.status, suite.number) == ("mptcp-token", "pass", 1)
    assert [c.name for c in suite.children] == [
        "mptcp_token_test_req_basic", "mptcp_token_test_msk_basic",
        "mptcp_token_test_accept", "mptcp_token_test_destroyed"]
    assert [c.number for c in suite.children] == [1, 2, 3, 4]
    assert "# mptcp-token: pass:4 fail:0 skip:0 total:4" in suite.output
    result = ScriptResult("mptcp-token", 0, [suite], "", 1.0)
    assert (result.passed, result.failed, result.status) == (4, 0, "pass")


def test_kunit_in_a_boot_console_log():
    suites = parse_ktap(read("kunit-boot-console.log"))
    assert [(s.number, s.name, len(s.children)) for s in suites] == [
        (1, "mptcp-crypto", 1), (2, "mptcp-token", 4)]
    assert suites[0].children[0].name == "mptcp_crypto_test_basic"
    every = [s.output for s in suites] + [c.name for s in suites for c in s.children]
    assert not any("[    1." in text or "\r" in text for text in every)
    assert "# module: mptcp_crypto_test" in suites[0].output  # the block's header
    assert suites[0].children[0].output == ""


def test_a_script_cut_in_the_middle_of_its_tap():
    text = read("diag-fail.out")
    cut = text[:text.index("ok 13 -")]  # results 1..12 arrived, the plan says 29
    result = parse_selftest("diag.sh", cut, None, 1800.0)
    cases = by_number(result)
    assert len(cases) == 29
    assert [n for n, c in cases.items() if c.status == "fail"] == list(range(13, 30))
    assert cases[13].reason == SCRIPT_STOPPED
    assert cases[13].name == "....chk 2 cestab"  # named from the human part
    assert result.cases[-1].name == "diag.sh: cut at its timeout"
    assert (result.passed, result.failed, result.skipped) == (9, 18, 3)


def test_a_skipped_script_without_tap():
    output = "INFO: checking tools\nSKIP: Could not run test without ss\n"
    result = parse_selftest("diag.sh", output, 4, 0.1)
    assert [(c.name, c.status, c.reason) for c in result.cases] == [
        ("diag.sh", "skip", "SKIP: Could not run test without ss")]
    assert result.status == "skip"


@pytest.mark.parametrize(("exit_code", "status", "name"), [
    (0, "pass", "x.sh"), (2, "fail", "x.sh"), (None, "fail", "x.sh: cut at its timeout")])
def test_a_script_without_tap(exit_code, status, name):
    output = "\n".join(f"line {n}" for n in range(100))
    (case,) = parse_selftest("x.sh", output, exit_code, 1.0).cases
    assert (case.name, case.status) == (name, status)
    if status == "fail":
        assert "line 99" in case.output and "line 0\n" not in case.output


def test_an_exit_code_without_a_failing_result_is_a_failure():
    output = "TAP version 13\n1..2\nok 1 - a\nok 2 - b # SKIP\n"
    result = parse_selftest("x.sh", output, 1, 1.0)
    assert result.cases[-1].name == "x.sh: exit code 1"
    assert (result.passed, result.failed, result.skipped) == (1, 1, 1)
    assert parse_selftest("x.sh", output, 4, 1.0).status == "pass"


@pytest.mark.parametrize("garbage", [
    "", "\n\n", "okay then\nok\nnot okay\n1..x\n# just a comment\n",
    "\x00\x1b[31mred\x1b[0m \xff\ufffd binary\n    indented noise\n"])
def test_garbage_has_no_results(garbage):
    assert parse_ktap(garbage) == []
    (case,) = parse_selftest("x.sh", garbage, 0, 1.0).cases
    assert (case.name, case.status) == ("x.sh", "pass")


def test_noise_between_results_is_ignored():
    text = "boot noise\nTAP version 13\n1..2\nrandom: crng init done\nok 1 - a\n" \
           "some other message\nnot ok 2 - b\ntrailing noise\n"
    cases = parse_ktap(text)
    assert [(c.number, c.name, c.status, c.output) for c in cases] == [
        (1, "a", "pass", ""), (2, "b", "fail", "")]


FAILING_KUNIT = textwrap.dedent("""\
    KTAP version 1
    1..1
        KTAP version 1
        # Subtest: example
        # module: example_test
        1..3
        # example_simple_test: EXPECTATION FAILED at lib/kunit/example-test.c:29
        Expected 1 + 1 == 3, but
            1 + 1 == 2 (0x2)
            3 == 3 (0x3)
        not ok 1 example_simple_test
        ok 2 example_skip_test # SKIP this test should be skipped
        ok 3 example_todo_test # TODO not written yet
    # example: pass:0 fail:1 skip:1 total:3
    not ok 1 example
    """)


def test_a_failing_kunit_case_carries_its_assertion():
    (suite,) = parse_ktap(FAILING_KUNIT)
    failed, skipped, todo = suite.children
    assert failed.status == "fail"
    assert failed.output.splitlines() == [
        "# example_simple_test: EXPECTATION FAILED at lib/kunit/example-test.c:29",
        "Expected 1 + 1 == 3, but",
        "    1 + 1 == 2 (0x2)",
        "    3 == 3 (0x3)"]
    assert failed.reason == "EXPECTATION FAILED at lib/kunit/example-test.c:29"
    assert (skipped.status, skipped.reason) == ("skip", "this test should be skipped")
    assert (todo.status, todo.reason) == ("xfail", "not written yet")
    assert "# module: example_test" in suite.output
    assert "EXPECTATION" not in suite.output
    names = [name for name, _ in leaves([suite])]
    assert names == ["example.example_simple_test", "example.example_skip_test",
                     "example.example_todo_test"]


def test_a_kunit_suite_cut_before_its_result():
    text = FAILING_KUNIT.split("    ok 2")[0]
    (suite,) = parse_ktap(text)
    assert (suite.name, suite.status, suite.number) == ("example", "fail", 1)
    assert [(c.number, c.status) for c in suite.children] == [(1, "fail"), (2, "fail"), (3, "fail")]
    assert suite.children[1].reason.startswith("no result")


def test_a_failed_parent_with_passing_children_still_counts():
    text = "KTAP version 1\n1..1\n    1..2\n    ok 1 a\n    ok 2 b\n# suite exit failed\n" \
           "not ok 1 s\n"
    found = leaves(parse_ktap(text))
    assert [(name, case.status) for name, case in found] == [
        ("s", "fail"), ("s.a", "pass"), ("s.b", "pass")]


def test_deeper_nesting_and_two_space_indentation():
    text = "KTAP version 1\n1..1\n  KTAP version 1\n  # Subtest: s\n  1..1\n" \
           "    KTAP version 1\n    # Subtest: param\n    1..2\n    ok 1 p=1\n" \
           "    ok 2 p=2 # SKIP no\n  ok 1 param\nok 1 s\n"
    (suite,) = parse_ktap(text)
    (param,) = suite.children
    assert [c.name for c in param.children] == ["p=1", "p=2"]
    assert [name for name, _ in leaves([suite])] == ["s.param.p=1", "s.param.p=2"]


def test_bail_out_stops_and_fails_the_rest():
    text = "TAP version 13\n1..3\nok 1 - a\nBail out! no network\nok 2 - b\n"
    cases = parse_ktap(text)
    assert [(c.number, c.status) for c in cases] == [(1, "pass"), (2, "fail"), (3, "fail")]
    assert "no network" in cases[1].reason


@pytest.mark.parametrize(("line", "name", "status", "reason", "duration"), [
    ("ok 1 - plain", "plain", "pass", "", None),
    ("ok 2 plain without dash", "plain without dash", "pass", "", None),
    ("not ok 3 - x # time=1.5s", "x", "fail", "", 1.5),
    ("ok 4 - x # SKIP why not time=20ms", "x", "skip", "why not", 0.02),
    ("ok 5 - x # skipped: old kernel", "x", "skip", "old kernel", None),
    ("not ok 6 - x # TODO later", "x", "xfail", "later", None),
    ("ok 7 - x # XFAIL known", "x", "xfail", "known", None),
    ("ok 8 - x # IGNORE Flaky time=3ms", "x", "xfail", "Flaky", 0.003),
    ("ok 9 - test #9 # SKIP", "test #9", "skip", "", None),
    ("ok 10 # SKIP", "", "skip", "", None),
])
def test_result_lines(line, name, status, reason, duration):
    (case,) = parse_ktap(line)
    assert (case.name, case.status, case.reason) == (name, status, reason)
    assert case.duration_s == (pytest.approx(duration) if duration else None)


def test_script_status():
    def result(*statuses: str, flaky: bool = False) -> ScriptResult:
        return ScriptResult("x", 0, [Case(s, s) for s in statuses], "", 1.0, flaky=flaky)
    assert result("pass", "skip").status == "pass"
    assert result("skip", "skip").status == "skip"
    assert result("pass", "fail", "skip").status == "fail"
    assert result("xfail").status == "pass" and result("xfail").passed == 1
    assert result("pass", flaky=True).status == "flaky"
