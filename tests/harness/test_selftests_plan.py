"""Which selftest slots a run is made of: --only entries, the whole suite, mptcp_join.sh's
test groups read from the script's own table."""

import os
import textwrap
from pathlib import Path

import pytest

from harness.kernel.selftests_build import installed_suite
from harness.runs import selftest_capture
from harness.runs.selftest_plan import (
    SelftestError,
    Slot,
    command_line,
    default_slots,
    join_groups,
    parse_only,
)
from harness.runs.selftests import HOST_MARGIN_S, KILL_GRACE_S, Policy, timed_command


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


def fake_install(root: Path) -> Path:
    """An install as the kernel's `make install` lays it out: shared libraries above."""
    suite = root / "net" / "mptcp"
    suite.mkdir(parents=True)
    (root / "net" / "lib.sh").write_text("# shared\n")
    script = suite / "mptcp_join.sh"
    script.write_text("#!/bin/bash\n")
    script.chmod(0o755)
    return suite


def test_a_captured_attempt_runs_in_a_writable_copy_and_keeps_its_pcaps(tmp_path, monkeypatch):
    suite = fake_install(tmp_path / "install")
    scratch, target = tmp_path / "exchange" / "capture", tmp_path / "evidence" / "slot" / "a-1"
    with selftest_capture.attempt(suite, "mptcp_join.sh", scratch, target) as capture:
        assert capture.options == ("-c",)
        assert capture.cwd == scratch / "net" / "mptcp"
        assert (capture.cwd.parent / "lib.sh").exists()  # what the scripts source
        assert os.access(capture.cwd / "mptcp_join.sh", os.X_OK)
        (capture.cwd / "mp_join-01-ns1.pcap").write_bytes(b"x" * 10)
        (capture.cwd / "mp_join-02-ns1.pcap").write_bytes(b"x" * 10)
        monkeypatch.setattr(selftest_capture, "KEEP_LIMIT_BYTES", 15)
    assert [p.name for p in capture.pcaps] == ["mp_join-01-ns1.pcap"]
    assert (target / selftest_capture.DROPPED).read_text().splitlines()[1] == \
        "mp_join-02-ns1.pcap 10 bytes"
    assert not scratch.exists()
    assert (suite / "mptcp_join.sh").exists() and not list(suite.glob("*.pcap"))

    selftest_capture.discard(capture.pcaps)
    assert not (tmp_path / "evidence").exists()  # the empty slot and run directories too


def test_a_script_that_cannot_capture_runs_where_it_is(tmp_path):
    suite = fake_install(tmp_path / "install")
    with selftest_capture.attempt(suite, "diag.sh", tmp_path / "scratch",
                                  tmp_path / "evidence") as capture:
        assert capture.cwd == suite and capture.options == ()
    assert capture.pcaps == () and not (tmp_path / "scratch").exists()
    with selftest_capture.attempt(suite, "mptcp_join.sh", tmp_path / "scratch", None) as capture:
        assert capture.cwd == suite and capture.options == ()


def test_discard_leaves_a_run_directory_with_other_evidence(tmp_path):
    pcaps_dir = tmp_path / "run" / "slot" / "attempt-1-pcaps"
    pcaps_dir.mkdir(parents=True)
    (pcaps_dir / "a.pcap").write_bytes(b"")
    (tmp_path / "run" / "other-slot").mkdir()
    selftest_capture.discard((pcaps_dir / "a.pcap",))
    assert not (tmp_path / "run" / "slot").exists() and (tmp_path / "run" / "other-slot").exists()


def test_an_attempt_that_raised_leaves_its_copy_to_the_vm(tmp_path):
    """The script may still run there (a hang kept for inspection); the copy lives in the VM's
    exchange directory and goes with the VM."""
    suite = fake_install(tmp_path / "install")
    scratch = tmp_path / "exchange" / "capture"
    with pytest.raises(KeyboardInterrupt), \
            selftest_capture.attempt(suite, "mptcp_join.sh", scratch, tmp_path / "evidence"):
        raise KeyboardInterrupt
    assert (scratch / "net" / "mptcp" / "mptcp_join.sh").exists()
    assert not (tmp_path / "evidence").exists()
