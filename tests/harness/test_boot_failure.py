"""How a boot that fails is reported, on a VM that has already ended: no QEMU is started, the
console and the watcher's dump are the files a real one leaves."""

from __future__ import annotations

import subprocess

import pytest

from harness.vm import machine, vmcore

PANIC_TITLE = "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"


def ended_vm(tmp_path, console_lines):
    """A Vm whose process is gone (a child already reaped) and whose console holds the lines."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    console = tmp_path / "console.log"
    console.write_text("".join(f"[   12.{n:06d}][    T1] {line}\n"
                               for n, line in enumerate(console_lines)))
    state = machine.VmState(
        pid=gone.pid, image=str(tmp_path / "bzImage"), image_mtime_ns=0,
        run_dir=str(tmp_path), console=str(console), ssh_port=1, client_key="",
        host_public_key="", accel="tcg", cpus=2, memory="2G", argv=[])
    return machine.Vm(state, tmp_path / "cache"), gone


def a_long_panic():
    """A panic whose stack trace is longer than the console tail a failure shows."""
    return ([PANIC_TITLE, "CPU: 0 UID: 0 PID: 1 Comm: swapper/0 Not tainted 6.12.118 #1",
             "Call Trace:", " <TASK>"]
            + [f" frame_{n}+0x{n:x}/0x100" for n in range(machine.LAST_LINES + 10)]
            + [" </TASK>", "Kernel Offset: disabled"])


def test_a_vm_that_panicked_and_ended_between_two_looks_is_reported_by_its_panic(tmp_path):
    vm, process = ended_vm(tmp_path, a_long_panic())
    with pytest.raises(machine.BootFailed) as failed:
        vm.wait_for_ssh(timeout=5, process=process)
    assert str(failed.value).startswith(f"the kernel panicked while booting: {PANIC_TITLE}\n")


def test_the_dump_its_watcher_wrote_before_the_end_is_kept(tmp_path):
    vm, process = ended_vm(tmp_path, a_long_panic())
    dump = tmp_path / vmcore.DUMP
    dump.write_bytes(b"\x7fELF")
    vmcore.DumpRecord(vmcore.FORMAT, 4, 0.1, 0.0).save(dump)
    with pytest.raises(machine.BootFailed) as failed:
        vm.wait_for_ssh(timeout=5, process=process)
    kept = machine.kept_path(vm.cache, machine.DEFAULT_NAME, machine.LAST_VMCORE)
    assert f"invoke inspect --core {kept}" in str(failed.value)
    assert kept.read_bytes() == b"\x7fELF" and not dump.exists()


def test_a_vm_that_ended_without_a_panic_is_reported_as_an_exit(tmp_path):
    vm, process = ended_vm(tmp_path, ["Run /init as init process", "reboot: Power down"])
    with pytest.raises(machine.BootFailed, match="^the VM exited while booting\n"):
        vm.wait_for_ssh(timeout=5, process=process)
