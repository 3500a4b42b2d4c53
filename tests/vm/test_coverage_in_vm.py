"""Coverage on the coverage variant: the kernel's gcov counters of net/mptcp, reset and
collected per part of a run, tell which part ran which function. CI builds this variant."""

from __future__ import annotations

from pathlib import Path

import pytest
from guest_programs import LOOPBACK_CONNECTION

from harness.coverage import tracefile
from harness.coverage.counters import Counters
from harness.coverage.report import write
from harness.kernel import build as kernel_build
from harness.paths import cache_dir
from harness.repro import bundle as bundles
from harness.runs import repro as repro_run
from harness.vm import machine

# In the guest: one MPTCP connection on loopback, 1000 bytes each way.
ONE_CONNECTION = (LOOPBACK_CONNECTION +
                  "server.sendall(b'y' * 1000)\n"
                  "assert len(client.recv(1000, socket.MSG_WAITALL)) == 1000\n")


@pytest.fixture
def coverage_image(variant_image):
    return variant_image("coverage")


def test_counters_tell_the_part_that_made_a_connection_from_an_idle_one(
        boot_vm, coverage_image, tmp_path):
    vm = boot_vm(image=coverage_image)
    counters = Counters.of(vm)
    for part, argv in (("connect", ["python3", "-c", ONE_CONNECTION]), ("idle", ["true"])):
        counters.reset()
        assert vm.run(argv, timeout=120).returncode == 0
        counters.collect(part)

    collected = sorted(p.relative_to(counters.directory / "connect").as_posix()
                       for p in (counters.directory / "connect").rglob("*.gcda"))
    assert "net/mptcp/protocol.gcda" in collected and len(collected) >= 15
    assert all(name.startswith("net/mptcp/") for name in collected), \
        f"gcov profiled objects outside net/mptcp: {collected}"

    report = write(counters.directory, counters.build_dir, "test", reports=tmp_path)
    data = tracefile.read(report.tracefile)
    assert sorted(data) == ["connect", "idle"]
    for function in ("mptcp_connect", "mptcp_sendmsg", "mptcp_recvmsg", "mptcp_stream_accept"):
        assert tracefile.tests_reaching(data, function) == ["connect"], function
    files = {source.rpartition("/net/mptcp/")[2]: c
             for source, c in tracefile.union(data).items()}
    # the path manager's netlink command exists, and no part ran it
    assert "mptcp_pm_nl_add_addr_doit" in files["pm_kernel.c"].functions
    assert tracefile.tests_reaching(data, "mptcp_pm_nl_add_addr_doit") == []
    assert len(files["protocol.c"].hit_lines()) > 100
    assert report.index.exists()


def test_a_reproduction_with_coverage_reports_what_each_run_reached(
        coverage_image, sharing_cache, tmp_path):
    """`invoke repro --coverage`: the gcov counters of each run, kept and reported beside the
    evidence. On the coverage kernel CI builds (a bundle's own would be another cold build)."""
    bundle_dir = tmp_path / "connect"
    bundle_dir.mkdir()
    (bundle_dir / "connect.py").write_text(ONE_CONNECTION + "print('connected')\n")
    (bundle_dir / "repro.toml").write_text(
        'summary = "one MPTCP connection on loopback"\n[kernel]\nvariant = "coverage"\n'
        '[[steps]]\nname = "connect"\npython = "connect.py"\n'
        '[expect.output]\nstep = "connect"\nmatches = "connected"\n')
    request = kernel_build.BuildRequest(cache=cache_dir(), variant="coverage")
    built = kernel_build.build(request)  # up to date: the kernel of coverage_image
    assert Path(built.record.image) == coverage_image
    report_dir = tmp_path / "report"
    report_dir.mkdir()

    verdict = repro_run.run_on_kernel(
        bundles.load(bundle_dir), request, built, sharing_cache,
        repro_run.ReproOptions(runs=2, coverage=True, quiet=True), report_dir, {})

    assert verdict.as_expected and len(verdict.reproduced) == 2, verdict.summary_markdown()
    assert sorted(p.name for p in (report_dir / repro_run.GCOV_DIR).iterdir()) == \
        ["run-01", "run-02"]
    data = tracefile.read(next(report_dir.glob("coverage-*/coverage.info")))
    assert sorted(data) == ["run_01", "run_02"]
    assert tracefile.tests_reaching(data, "mptcp_stream_accept") == ["run_01", "run_02"]
    assert tracefile.tests_reaching(data, "mptcp_pm_nl_add_addr_doit") == []
    assert "## Coverage of net/mptcp" in (report_dir / "summary.md").read_text()
    assert machine.running(sharing_cache, repro_run.VM_NAME) is None
