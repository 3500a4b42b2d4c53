"""The kernel-health oracle against a real guest: LKDTM provokes a WARNING and an oops, a
command hangs in D state, and kernels that cannot boot; each must be caught and reported
with its trace, and no VM may outlive the test."""

from __future__ import annotations

import time

import pytest

from harness.vm import machine
from harness.vm.ssh import CommandTimeout

LKDTM = "/sys/kernel/debug/provoke-crash/DIRECT"


def provoke(what: str) -> list[str]:
    return ["sh", "-c", f"echo {what} > {LKDTM}"]


def test_a_warning_fails_the_command_with_its_trace_and_the_guest_lives_on(boot_vm):
    vm = boot_vm()
    report = vm.run(provoke("WARNING"), timeout=30)
    assert report.returncode == 0  # the shell command itself succeeded...
    assert report.failed  # ...but the kernel logged a splat during it
    [splat] = report.splats
    assert splat.kind == "WARNING" and "drivers/misc/lkdtm/bugs.c" in splat.title
    assert any("lkdtm_WARNING" in line for line in splat.lines)
    assert "end trace" in splat.lines[-1]
    # decoded against the build's vmlinux: the "Code:" bytes become the faulting instruction
    assert "<-- trapping instruction" in vm.decoded(splat)
    after = vm.run(["echo", "still-here"], timeout=30)
    assert after.stdout.strip() == "still-here" and after.splats == []


def test_an_oops_that_panics_the_guest_is_reported_with_its_trace(boot_vm, vm_cache):
    vm = boot_vm()
    with pytest.raises(machine.GuestDied) as died:
        vm.run(provoke("EXCEPTION"), timeout=30)
    kinds = [s.kind for s in died.value.splats]
    assert kinds == ["BUG", "panic"]
    assert "lkdtm_EXCEPTION" in str(died.value)
    assert "Kernel panic - not syncing: Fatal exception" in str(died.value)
    assert machine.running(vm_cache) is None and machine.processes_mentioning(vm_cache) == []


def test_a_hung_command_is_cut_at_its_timeout_after_a_blocked_task_dump(boot_vm):
    vm = boot_vm()
    start = time.monotonic()
    with pytest.raises(CommandTimeout) as hung:
        vm.run(provoke("HUNG_TASK"), timeout=5)
    assert time.monotonic() - start < 5 + 20
    dump = hung.value.output
    assert "sysrq: Show Blocked State" in dump
    assert "state:D" in dump and "lkdtm_HUNG_TASK" in dump


def test_a_kernel_that_panics_at_boot_fails_with_the_last_console_lines(boot_vm, vm_cache):
    start = time.monotonic()
    with pytest.raises(machine.BootFailed) as failed:
        boot_vm(append=("rootfstype=ext4",), timeout=60)  # the root is 9p: nothing to mount
    assert time.monotonic() - start < 60
    text = str(failed.value)
    assert "Kernel panic - not syncing: VFS: Unable to mount root fs" in text
    assert machine.running(vm_cache) is None and machine.processes_mentioning(vm_cache) == []


def test_a_guest_that_never_runs_fails_at_the_boot_timeout(boot_vm, vm_cache):
    start = time.monotonic()
    with pytest.raises(machine.BootFailed, match="no SSH prompt from the VM within 8 s"):
        boot_vm(qemu_opts=("-S",), timeout=8)  # QEMU starts with its CPUs stopped
    assert 8 <= time.monotonic() - start < 8 + 10
    assert machine.running(vm_cache) is None and machine.processes_mentioning(vm_cache) == []
