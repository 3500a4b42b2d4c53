"""Which selftest slots a run is made of: --only entries, the whole suite, mptcp_join.sh's
test groups read from the script's own table."""

import textwrap

import pytest

from harness.kernel.selftests_build import installed_suite
from harness.runs.selftests import (
    HOST_MARGIN_S,
    KILL_GRACE_S,
    Policy,
    SelftestError,
    Slot,
    command_line,
    default_slots,
    join_groups,
    parse_only,
    timed_command,
)


@pytest.fixture
def suite(tmp_path):
    (tmp_path / "kselftest-list.txt").write_text(
        "net/mptcp:diag.sh\nnet/mptcp:mptcp_join.sh\nnet/mptcp:pm_netlink.sh\n")
    directory = tmp_path / "net" / "mptcp"
    directory.mkdir(parents=True)
    (directory / "settings").write_text("timeout=1800\n")
    (directory / "mptcp_join.sh").write_text(textwrap.dedent("""\
        #!/bin/bash
        all_tests_sorted=(
        \tf@subflows_tests
        \ts@signal_address_tests
        \tI@endpoint_tests
        )
        """))
    return installed_suite(tmp_path)


def test_the_suite_lists_its_scripts_and_timeout(suite):
    assert suite.scripts == ("diag.sh", "mptcp_join.sh", "pm_netlink.sh")
    assert suite.timeout_s == 1800


def test_the_whole_suite_runs_mptcp_join_group_by_group(suite):
    assert [s.name for s in default_slots(suite)] == [
        "diag.sh", "mptcp_join.sh -f", "mptcp_join.sh -s", "mptcp_join.sh -I", "pm_netlink.sh"]
    assert join_groups(suite)[1] == ("s", "signal_address_tests")


def test_only_takes_scripts_with_their_arguments(suite):
    assert parse_only(["diag.sh", "mptcp_join.sh -f -s", "mptcp_join.sh 42"], suite) == [
        Slot("diag.sh"), Slot("mptcp_join.sh", ("-f", "-s")), Slot("mptcp_join.sh", ("42",))]


def test_an_unknown_script_is_named_with_the_known_ones(suite):
    with pytest.raises(SelftestError, match=r"no script 'join.sh' in the suite \(diag.sh, "):
        parse_only(["join.sh -f"], suite)


def test_a_join_script_without_its_group_table_says_how_to_run_it(suite):
    (suite.directory / "mptcp_join.sh").write_text("#!/bin/bash\n")
    with pytest.raises(SelftestError, match="--only mptcp_join.sh"):
        default_slots(suite)


def test_an_executable_script_runs_as_is(suite):
    (suite.directory / "mptcp_join.sh").chmod(0o755)
    assert command_line(suite.directory, Slot("mptcp_join.sh", ("-f", "-s"))) == [
        "./mptcp_join.sh", "-f", "-s"]


def test_a_script_without_exec_bit_runs_through_its_interpreter(suite):
    wrapper = suite.directory / "mptcp_connect_mmap.sh"
    wrapper.write_text('#!/bin/bash\n"$(dirname "${0}")/mptcp_connect.sh" -m mmap "${@}"\n')
    wrapper.chmod(0o644)
    assert command_line(suite.directory, Slot("mptcp_connect_mmap.sh", ("-4",))) == [
        "/bin/bash", "./mptcp_connect_mmap.sh", "-4"]


def test_a_script_without_exec_bit_nor_interpreter_is_started_as_is(suite):
    (suite.directory / "diag.sh").write_text("echo no interpreter line\n")
    (suite.directory / "diag.sh").chmod(0o644)
    assert command_line(suite.directory, Slot("diag.sh")) == ["./diag.sh"]


def test_a_slot_runs_under_the_guests_timeout_and_the_host_waits_a_little_longer(suite):
    (suite.directory / "diag.sh").write_text("#!/bin/bash\n")
    (suite.directory / "diag.sh").chmod(0o755)
    argv, host_limit = timed_command(suite, Slot("diag.sh"), Policy(timeout_s=1800))
    assert argv == ["timeout", "-k", str(KILL_GRACE_S), "1800", "./diag.sh"]
    assert host_limit == 1800 + KILL_GRACE_S + HOST_MARGIN_S


def test_keep_on_hang_leaves_no_guest_timeout_to_kill_the_script(suite):
    (suite.directory / "diag.sh").write_text("#!/bin/bash\n")
    (suite.directory / "diag.sh").chmod(0o755)
    argv, host_limit = timed_command(suite, Slot("diag.sh"),
                                     Policy(timeout_s=1800, keep_on_hang=True))
    assert argv == ["./diag.sh"]
    assert host_limit == 1800
