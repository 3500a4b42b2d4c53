"""`invoke selftests --capture`: the kernel's own scripts capture their traffic (-c) in a
writable copy of the suite; a failed slot keeps the pcaps with its evidence, and they open."""

from __future__ import annotations

import re
import subprocess

from harness import backports, evidence
from harness.kernel.selftests_build import build_selftests
from harness.paths import cache_dir
from harness.runs import selftest_capture
from harness.runs.selftest_plan import JOIN, Slot
from harness.runs.selftests import Policy, keep_attempts, run_slot

LKDTM = "/sys/kernel/debug/provoke-crash/DIRECT"


def test_a_failed_slot_keeps_the_traffic_it_captured_and_a_passed_one_does_not(
        boot_vm, kernel_image, tmp_path):
    suite = build_selftests(kernel_image)
    vm = boot_vm()
    policy = Policy(suite.timeout_s, path_dirs=tuple(backports.path_dirs(cache_dir())),
                    capture=True)
    slot = Slot(JOIN, ("1",))  # "no JOIN": one MPTCP connection, captured in its namespace
    slot_dir = evidence.directory_name("selftests", slot.name)

    passed = run_slot(vm, suite, slot, policy, evidence_dir=tmp_path / "passed")
    assert passed.status == "pass", passed.output
    assert len(passed.pcaps) == 1 and passed.pcaps[0].name.startswith("mp_join-01-ns1")
    assert passed.pcaps[0].parent == tmp_path / "passed" / slot_dir / "attempt-1-pcaps"
    assert "Capturing traffic for test 1" in passed.output
    selftest_capture.discard(passed.pcaps)  # what the run does with a slot that passed
    assert not (tmp_path / "passed").exists()

    # a WARNING while the slot runs fails it: its captures are evidence now
    vm.guest.run(f"(sleep 3; echo WARNING > {LKDTM}) >/dev/null 2>&1 &", timeout=30)
    failed = run_slot(vm, suite, slot, policy, evidence_dir=tmp_path / "failed")
    assert failed.status == "fail" and failed.splats, failed.note
    kept = keep_attempts(failed, tmp_path / "failed" / slot_dir)
    pcaps = [p for p in kept.evidence if p.suffix == ".pcap"]
    assert [p.parent for p in pcaps] == [tmp_path / "failed" / slot_dir / "attempt-1-pcaps"]
    read = subprocess.run(["tcpdump", "-nr", str(pcaps[0])], capture_output=True, text=True,
                          timeout=60)
    assert read.returncode == 0, read.stderr
    # the file holds what the script's tcpdump said it captured during that attempt
    captured = re.search(r"^(\d+) packets captured$", failed.output, re.M)
    assert captured and int(captured.group(1)) > 0, failed.output
    assert len(read.stdout.splitlines()) == int(captured.group(1))
    assert not (vm.exchange_dir / "capture").exists()  # the writable copy is gone
