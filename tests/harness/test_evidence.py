"""Evidence of a failed test: kept for it (pcaps that open, MIB deltas, ss, output), not for
a passing one, and pointed at from the JUnit report."""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import evidence
from harness.capture import read_pcap
from harness.run import run

TWO_TESTS = '''
from harness import traffic


def test_fails_after_a_transfer(topology):
    topo = topology("single-path")
    traffic.transfer(topo.ns("client"), topo.ns("server"), topo.addresses("server", 4)[0],
                     nbytes=100_000)
    print("what the test printed")
    assert False, "failing on purpose"


def test_passes(topology):
    topology("single-path")
'''


def test_junit_names_follow_pytest():
    assert evidence.junit_names("tests/mptcp/test_a.py::test_b[x-1]") == \
        ("tests.mptcp.test_a", "test_b[x-1]")
    assert evidence.junit_names("test_a.py::TestC::test_d") == ("test_a.TestC", "test_d")


def test_a_directory_name_is_one_safe_file_name():
    name = evidence.directory_name("tests.mptcp.test_a", "test_b[eth1/x y]")
    assert name == "tests.mptcp.test_a.test_b_eth1_x_y_"


def test_only_the_newest_runs_are_kept(tmp_path):
    for n in range(5):
        run_dir = tmp_path / f"test-{n}"  # a time stamp starts with a digit
        run_dir.mkdir()
        os.utime(run_dir, (n, n))
    (tmp_path / "repro-x").mkdir()
    (tmp_path / "test-other-1").mkdir()  # not a run of this kind: a name after the prefix
    evidence.prune_runs(tmp_path, "test-", keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repro-x", "test-3", "test-4",
                                                          "test-other-1"]


def test_a_run_without_evidence_leaves_no_directory(tmp_path):
    written = tmp_path / "written"
    written.mkdir()
    assert evidence.keep_run(written, reports=tmp_path / "reports") is None
    assert not (tmp_path / "reports").exists() and not written.exists()


SAME_TOPOLOGY_TWICE = '''
from harness import traffic


def test_fails_after_two_builds(topology):
    for nbytes in (100_000, 300_000):
        topo = topology("single-path")
        traffic.transfer(topo.ns("client"), topo.ns("server"), topo.addresses("server", 4)[0],
                         nbytes=nbytes)
    assert False, "failing on purpose"
'''


def failing_pytest_run(directory: Path, source: str) -> tuple[Path, Path]:
    """pytest on `source` (a test module, one test of it failing) in directory, keeping
    evidence: (evidence dir, junit file)."""
    (directory / "test_module.py").write_text(source)
    written, junit = directory / "evidence", directory / "junit.xml"
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            f"--junitxml={junit}", "test_module.py"]
    done = subprocess.run(argv, cwd=directory, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **evidence.pytest_env(written, False)})
    assert done.returncode == 1, done.stdout + done.stderr
    return written, junit


@pytest.fixture
def failed_run(tmp_path, mptcp_kernel):
    """A pytest run of TWO_TESTS (one fails) keeping evidence: (evidence dir, junit file)."""
    return failing_pytest_run(tmp_path, TWO_TESTS)


def test_a_topology_built_twice_keeps_the_evidence_of_each(tmp_path, mptcp_kernel):
    """The second build of a topology of the same name in one test has files of its own
    (name.2-...), not the first one's overwritten: each pcap holds its own transfer."""
    written, _junit = failing_pytest_run(tmp_path, SAME_TOPOLOGY_TWICE)
    (kept,) = written.iterdir()
    payload = {label: sum(s.payload_len for s in read_pcap(kept / f"{label}-client-eth0.pcap"))
               for label in ("single-path", "single-path.2")}
    assert 100_000 <= payload["single-path"] < 300_000, payload
    assert payload["single-path.2"] >= 300_000, payload
    for label in ("single-path", "single-path.2"):
        assert "MPTcpExt.MPCapableSYNTX +1" in (kept / f"{label}-client-mib.txt").read_text()


def test_a_failed_test_leaves_pcaps_mibs_ss_and_output(failed_run):
    written, _junit = failed_run
    (kept,) = written.iterdir()  # the passing test left nothing
    assert kept.name == evidence.directory_name("test_module", "test_fails_after_a_transfer")
    output = (kept / "output.txt").read_text()
    assert "failing on purpose" in output and "what the test printed" in output
    (pcap,) = kept.glob("*.pcap")
    run(["tcpdump", "-n", "-r", str(pcap)])  # it opens
    segments = read_pcap(pcap)
    assert any(s.is_syn and "MP_CAPABLE" in s.mptcp_subtypes for s in segments)
    assert sum(s.payload_len for s in segments) >= 100_000
    assert "MPTcpExt.MPCapableSYNTX +1" in (kept / "single-path-client-mib.txt").read_text()
    assert "MPTcpExt.MPCapableSYNRX +1" in (kept / "single-path-server-mib.txt").read_text()
    assert (kept / "single-path-client-ss.txt").read_text().startswith("Netid")


def test_the_junit_report_points_at_the_evidence(failed_run):
    written, junit = failed_run
    assert evidence.attach_to_junit(junit, written) == 1
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    out = cases["test_fails_after_a_transfer"].find("system-out").text
    attached = [Path(line[len("[[ATTACHMENT|"):-2]) for line in out.splitlines()
                if line.startswith("[[ATTACHMENT|")]
    assert {p.name for p in attached} >= {"output.txt", "single-path-client-eth0.pcap"}
    assert all(p.is_file() for p in attached)
    assert cases["test_passes"].find("system-out") is None
