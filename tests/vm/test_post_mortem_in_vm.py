"""gdb on the guest's kernel, and the dump of a guest that panicked, on the debug variant
(debug info, the kernel's gdb helpers, pvpanic). CI does not build that variant (13 minutes
cold): without its image these tests skip and say how to build it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from guest_programs import LOOPBACK_CONNECTION

from harness.paths import PROJECT_ROOT
from harness.vm import gdb, machine
from harness.vm.vmcore import DumpRecord

LKDTM = "/sys/kernel/debug/provoke-crash/DIRECT"
# In the guest: MPTCP connects to a closed port every second, for a breakpoint to catch.
CONNECT_LOOP = ("import socket, time\n"
                "for _ in range(90):\n"
                "    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)\n"
                "    try:\n"
                "        s.connect(('127.0.0.1', 9))\n"
                "    except OSError:\n"
                "        pass\n"
                "    s.close()\n"
                "    time.sleep(1)\n")
# In the guest: one MPTCP connection on loopback, 1000 bytes sent, then a panic.
PANIC_WITH_A_CONNECTION = (
    LOOPBACK_CONNECTION +
    f"open({LKDTM!r}, 'w').write('PANIC')\n")


@pytest.fixture
def debug_image(variant_image):
    return variant_image("debug")


def test_gdb_attaches_and_lx_dmesg_prints_the_guest_log(boot_vm, debug_image):
    vm = boot_vm(image=debug_image, timeout=machine.boot_timeout_for(debug_image))
    vm.run(["sh", "-c", "echo gdb-was-here > /dev/kmsg"], timeout=60)
    result = gdb.batch(Path(vm.state.run_dir), Path(vm.build_record().vmlinux), ["lx-dmesg"],
                       timeout=120)
    assert result.returncode == 0, result.stderr
    assert "gdb-was-here" in result.stdout
    assert "detached" in result.stdout
    after = vm.run(["echo", "still-running"], timeout=60)  # detaching let the guest go on
    assert after.stdout.strip() == "still-running"


def test_a_breakpoint_stops_the_kernel_in_the_function_a_program_calls(boot_vm, debug_image):
    vm = boot_vm(image=debug_image, timeout=machine.boot_timeout_for(debug_image))
    session: dict[str, object] = {}

    def attach() -> None:
        session["result"] = gdb.batch(Path(vm.state.run_dir), Path(vm.build_record().vmlinux),
                                      ["lx-ps"], breakpoints=["mptcp_connect"], timeout=240)

    debugger = threading.Thread(target=attach)
    debugger.start()
    vm.run(["python3", "-c", CONNECT_LOOP], timeout=240)
    debugger.join()
    output = session["result"].stdout
    assert "Breakpoint 1, mptcp_connect" in output
    assert "__sys_connect" in output  # the backtrace, down from the system call
    assert "python3" in output  # lx-ps: the caller is among the guest's tasks


def test_gdb_waiting_on_a_vm_that_goes_away_ends_and_leaves_nothing(boot_vm, debug_image,
                                                                    vm_cache):
    vm = boot_vm(image=debug_image, timeout=machine.boot_timeout_for(debug_image))
    session: dict[str, object] = {}

    def attach() -> None:  # a breakpoint nothing will hit
        session["result"] = gdb.batch(Path(vm.state.run_dir), Path(vm.build_record().vmlinux),
                                      ["lx-ps"], breakpoints=["mptcp_connect"], timeout=240)

    debugger = threading.Thread(target=attach)
    debugger.start()
    deadline = time.monotonic() + 60
    while not any(p.startswith("gdb ") for p in machine.processes_mentioning(vm_cache)):
        assert time.monotonic() < deadline, "gdb never started"
        time.sleep(0.2)
    time.sleep(3)  # attached and waiting
    machine.halt(vm_cache)
    debugger.join(timeout=60)
    assert not debugger.is_alive(), "gdb still waits on a VM that is gone"
    assert session["result"].returncode != 0
    assert machine.processes_mentioning(vm_cache) == []


def test_a_panic_leaves_a_dump_that_inspect_reads(boot_vm, debug_image, vm_cache):
    vm = boot_vm(image=debug_image, timeout=machine.boot_timeout_for(debug_image))
    with pytest.raises(machine.GuestDied) as died:
        vm.run(["python3", "-c", PANIC_WITH_A_CONNECTION], timeout=240)
    core = died.value.vmcore
    assert core is not None and core.is_file(), str(died.value)
    assert f"invoke inspect --core {core}" in str(died.value)
    record = DumpRecord.load(core)
    assert record.format == "elf" and Path(record.vmlinux).is_file()
    assert machine.running(vm_cache) is None and machine.processes_mentioning(vm_cache) == []
    shown = subprocess.run([sys.executable, "-m", "harness.mptcp.kernel_view", record.vmlinux,
                            str(core)], capture_output=True, text=True, timeout=300,
                           cwd=PROJECT_ROOT)
    assert shown.returncode == 0, shown.stderr
    assert "Kernel panic - not syncing: dumptest" in shown.stdout  # its log, from the dump
    assert "lkdtm_PANIC" in shown.stdout  # where it panicked
    assert "2 MPTCP connection(s)" in shown.stdout  # the client and the accepted socket
    assert "bytes: sent 1000 acked 1000" in shown.stdout


def test_a_panic_at_boot_keeps_its_dump(boot_vm, debug_image, vm_cache):
    with pytest.raises(machine.BootFailed) as failed:
        boot_vm(image=debug_image, append=("rootfstype=ext4",),  # the root is 9p
                timeout=machine.boot_timeout_for(debug_image))
    text = str(failed.value)
    assert "Kernel panic - not syncing: VFS: Unable to mount root fs" in text
    kept = machine.kept_path(vm_cache, machine.DEFAULT_NAME, machine.LAST_VMCORE)
    assert f"invoke inspect --core {kept}" in text
    record = DumpRecord.load(kept)
    assert record.format == "elf" and kept.stat().st_size > 0
    assert machine.running(vm_cache) is None and machine.processes_mentioning(vm_cache) == []
