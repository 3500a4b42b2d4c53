"""JUnit XML and the terminal summary of selftest and KUnit results."""

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, Skipped

from harness.report.junit import write_junit, xml_text
from harness.report.ktap import Case, ScriptResult, parse_ktap, parse_selftest
from harness.report.summary import summary_line, summary_table

DATA = Path(__file__).parent / "data" / "tap"


def selftest(file: str, name: str, exit_code: int | None) -> ScriptResult:
    return parse_selftest(name, (DATA / file).read_text(), exit_code, 100.0)


@pytest.fixture
def results() -> list[ScriptResult]:
    """diag.sh failed, mptcp_join.sh -f flaky, pm_netlink.sh skipped, a KUnit suite passed."""
    join = replace(selftest("mptcp_join-f.out", "mptcp_join.sh -f", 0), flaky=True,
                   note="failed on attempt 1 (mptcp_join: no JOIN), passed on attempt 2")
    skipped = parse_selftest("pm_netlink.sh", "SKIP: Could not run test without ip tool\n",
                             4, 0.2)
    kunit = ScriptResult("mptcp-token", 0,
                         parse_ktap((DATA / "kunit-mptcp-token.ktap").read_text()), "", 1.5)
    return [selftest("diag-fail.out", "diag.sh", 1), join, skipped, kunit]


def suites_by_name(path: Path) -> dict:
    return {suite.name: suite for suite in JUnitXml.fromfile(str(path))}


def test_junit_counts_and_names(tmp_path, results):
    path = tmp_path / "out" / "junit.xml"
    write_junit(path, results)
    suites = suites_by_name(path)
    assert list(suites) == ["selftests.diag.sh", "selftests.mptcp_join.sh -f",
                            "selftests.pm_netlink.sh", "selftests.mptcp-token"]
    diag = suites["selftests.diag.sh"]
    assert (diag.tests, diag.failures, diag.skipped, diag.errors) == (29, 1, 4, 0)
    names = [case.name for case in diag]
    assert names[0] == "01 - diag: no msk on netns creation"
    assert names[22] == "23 - diag: ....chk many cestab"
    assert [case.name for case in suites["selftests.mptcp-token"]][0] == \
        "01 - mptcp-token.mptcp_token_test_req_basic"
    assert [case.name for case in suites["selftests.pm_netlink.sh"]] == ["pm_netlink.sh"]


def test_junit_failure_and_skip(tmp_path, results):
    path = tmp_path / "junit.xml"
    write_junit(path, results)
    cases = list(suites_by_name(path)["selftests.diag.sh"])
    (failure,) = cases[22].result
    assert isinstance(failure, Failure)
    assert failure.message == "expected 200 found 0"
    assert "23 ....chk many cestab" in failure.text
    assert "[FAIL] expected 200 found 0" in cases[22].system_out
    assert cases[22].time == pytest.approx(2.095)
    (skip,) = cases[6].result
    assert isinstance(skip, Skipped) and skip.message == "Feature probably not supported"
    assert cases[0].is_passed and cases[0].system_out is None


def test_junit_flaky(tmp_path, results):
    path = tmp_path / "junit.xml"
    write_junit(path, results)
    join = suites_by_name(path)["selftests.mptcp_join.sh -f"]
    assert [(p.name, p.value) for p in join.properties()] == [("flaky", "true")]
    assert (join.tests, join.failures) == (7, 0)
    assert all(case.is_passed and "passed on a retry" in case.system_out for case in join)
    element = ET.parse(path).getroot().find("testsuite[@name='selftests.mptcp_join.sh -f']")
    assert "passed on attempt 2" in element.find("system-err").text


def test_junit_xfail_passes_with_a_note(tmp_path):
    result = ScriptResult("x.sh", 0, [Case("known bug", "xfail", 1, "issue 42")], "", 1.0)
    path = tmp_path / "junit.xml"
    write_junit(path, [result], suite_prefix="kunit")
    (case,) = suites_by_name(path)["kunit.x.sh"]
    assert case.is_passed and "expected failure" in case.system_out
    assert "issue 42" in case.system_out


def test_junit_survives_control_characters(tmp_path):
    dirty = "\x1b[31mred\x1b[0m \x00nul \x07bell \x0bvt\r\n<tag> & \"quotes\" \udcff ok"
    case = Case(f"name {dirty}", "fail", 1, reason=dirty, output=dirty)
    result = ScriptResult(f"s{dirty}", None, [case], dirty, 1.0, note=dirty)
    path = tmp_path / "junit.xml"
    write_junit(path, [result])
    root = ET.parse(path).getroot()
    failure = root.find("testsuite/testcase/failure")
    assert failure.text == "red nul bell vt\n<tag> & \"quotes\"  ok"
    assert failure.get("message") == failure.text
    assert root.find("testsuite/system-err").text == failure.text
    (suite,) = JUnitXml.fromfile(str(path))
    assert suite.failures == 1


def test_xml_text_keeps_printable_unicode():
    assert xml_text("tab\there ünïcode ✓ \U0001f600") == "tab\there ünïcode ✓ \U0001f600"


def test_summary_table(results):
    table = summary_table(results)
    lines = table.splitlines()
    assert lines[0].split() == ["script", "status", "passed", "failed", "skipped", "time", "(s)"]
    rows = {line.split("  ")[0].strip(): line.split() for line in lines[2:6]}
    assert rows["diag.sh"][-5:] == ["fail", "24", "1", "4", "100.0"]
    assert rows["mptcp_join.sh -f"][-5:] == ["flaky", "7", "0", "0", "100.0"]
    assert rows["pm_netlink.sh"][-5:] == ["skip", "0", "0", "1", "0.2"]
    assert rows["mptcp-token"][-5:] == ["pass", "4", "0", "0", "1.5"]
    assert lines[7].split() == ["total", "fail", "35", "1", "5", "201.7"]
    assert "failed:\n  diag.sh #23 diag: ....chk many cestab: expected 200 found 0" in table
    assert "  diag.sh #7 diag: ....chk last_data_sent: Feature probably not supported" in table
    assert "  pm_netlink.sh pm_netlink.sh: SKIP: Could not run test without ip tool" in table
    assert "flaky:\n  mptcp_join.sh -f: failed on attempt 1" in table
    widths = {len(line) for line in lines[:8] if not line.startswith("-")}
    assert len(widths) == 1  # fixed width


def test_summary_table_all_passed_has_no_lists():
    result = ScriptResult("a.sh", 0, [Case("a", "pass", 1)], "", 2.0)
    table = summary_table([result])
    assert "failed:" not in table and "skipped:" not in table and "flaky:" not in table
    assert table.splitlines()[-1].split() == ["total", "pass", "1", "0", "0", "2.0"]


def test_summary_line(results):
    assert summary_line(results) == \
        "selftests: 4 scripts, 35 passed, 1 failed, 5 skipped, 1 flaky"
    assert summary_line(results[3:], "KUnit") == \
        "KUnit: 1 script, 4 passed, 0 failed, 0 skipped, 0 flaky"


def cases_by_name(path: Path) -> dict[str, ET.Element]:
    return {case.get("name"): case for case in ET.parse(path).getroot().iter("testcase")}


MANY_CESTAB = "23 - diag: ....chk many cestab"


def test_a_case_that_failed_before_the_passing_retry_has_a_flaky_failure(tmp_path):
    first = selftest("diag-fail.out", "diag.sh", 1)
    passed = [replace(case, status="pass") if case.status == "fail" else case
              for case in first.cases]
    final = replace(first, exit_code=0, cases=passed, flaky=True, failed_attempts=(first,))
    write_junit(tmp_path / "junit.xml", [final])
    cases = cases_by_name(tmp_path / "junit.xml")
    (flaky,) = cases[MANY_CESTAB].findall("flakyFailure")
    assert flaky.get("message") == "expected 200 found 0"
    assert "[FAIL] expected 200 found 0" in flaky.find("system-out").text
    assert cases[MANY_CESTAB].find("failure") is None
    others = [case for name, case in cases.items() if name != MANY_CESTAB]
    assert not any(case.findall("flakyFailure") for case in others)


def test_a_case_that_failed_every_attempt_has_a_rerun_failure(tmp_path):
    first = selftest("diag-fail.out", "diag.sh", 1)
    write_junit(tmp_path / "junit.xml", [replace(first, failed_attempts=(first,))])
    case = cases_by_name(tmp_path / "junit.xml")[MANY_CESTAB]
    assert case.find("failure") is not None
    (rerun,) = case.findall("rerunFailure")
    assert rerun.get("message") == "expected 200 found 0"


def test_a_failed_slot_keeps_each_attempt_and_the_junit_points_at_them(tmp_path):
    from harness.runs.selftests import keep_attempts

    first = replace(selftest("diag-fail.out", "diag.sh", 1), console="[ 1.0] first\n")
    final = replace(first, console="[ 9.0] second\n", failed_attempts=(first,))
    kept = keep_attempts(final, tmp_path / "diag.sh")
    assert [p.name for p in kept.evidence] == ["attempt-1-output.txt", "attempt-1-console.txt",
                                               "attempt-2-output.txt", "attempt-2-console.txt"]
    assert (tmp_path / "diag.sh" / "attempt-2-console.txt").read_text() == "[ 9.0] second\n"
    write_junit(tmp_path / "junit.xml", [kept])
    cases = cases_by_name(tmp_path / "junit.xml")
    out = cases[MANY_CESTAB].find("system-out").text
    assert f"[[ATTACHMENT|{tmp_path / 'diag.sh' / 'attempt-1-console.txt'}]]" in out
    assert cases["01 - diag: no msk on netns creation"].find("system-out") is None
