"""The SSH session to a real guest (status, streamed output, timeouts, files both ways,
host-key checking) and the per-test oracle of pytest runs inside the guest."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from pathlib import Path

import paramiko
import pytest

from harness.runs import tests as test_runner
from harness.vm import machine
from harness.vm.ssh import CommandTimeout, Guest, write_key_pair

DATA = Path(__file__).with_name("data")


def test_commands_give_status_and_interleaved_output_streamed(boot_vm):
    vm = boot_vm()
    streamed = []
    result = vm.guest.run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=30,
                          output=streamed.append)
    assert result.status == 3
    assert result.output.splitlines() == ["out", "err"]
    assert "".join(streamed) == result.output


def test_a_command_past_its_timeout_is_cut_with_what_it_printed(boot_vm):
    vm = boot_vm()
    with pytest.raises(CommandTimeout) as cut:
        vm.guest.run("echo started; sleep 600 & echo $! > /tmp/child; wait", timeout=2)
    assert cut.value.output.strip() == "started"
    # the command's whole process group was killed, its background child included
    # (a zombie counts as gone: the guest's init may not reap orphans at once)
    state = vm.guest.run('cut -d" " -f3 "/proc/$(cat /tmp/child)/stat" 2>/dev/null', 30)
    assert state.output.strip() in ("", "Z")


def test_keep_on_hang_leaves_the_command_and_its_vm_up_for_a_person(kernel_image, vm_cache):
    options = machine.BootOptions(image=kernel_image)
    try:
        with pytest.raises(CommandTimeout) as hung, machine.session(options, vm_cache) as vm:
            vm.run(["sh", "-c", "echo $$ > /tmp/hung; exec sleep 600"], timeout=3,
                   keep_on_hang=True)
        assert hung.value.kept and "invoke halt" in str(hung.value)
        assert machine.running(vm_cache) is not None  # the session did not halt it
        with machine.session(options, vm_cache) as again:  # the same VM, reused
            assert again.state.pid == vm.state.pid
            state = again.run(["sh", "-c", 'cut -d" " -f3 "/proc/$(cat /tmp/hung)/stat"'], 30)
        assert state.stdout.strip() == "S"  # the command sleeps on, as it was
    finally:
        machine.halt(vm_cache)
    assert machine.running(vm_cache) is None


def test_without_keep_on_hang_a_session_halts_its_vm_after_a_timeout(kernel_image, vm_cache):
    options = machine.BootOptions(image=kernel_image)
    with pytest.raises(CommandTimeout) as hung, machine.session(options, vm_cache) as vm:
        vm.run(["sleep", "600"], timeout=3)
    assert not hung.value.kept
    assert machine.running(vm_cache) is None


def test_files_go_both_ways(boot_vm, tmp_path):
    vm = boot_vm()
    sent = tmp_path / "sent.bin"
    sent.write_bytes(bytes(range(256)) * 1000)
    vm.guest.put(sent, "/tmp/copy.bin")
    digest = vm.guest.run("sha256sum /tmp/copy.bin", 30).output.split()[0]
    assert digest == hashlib.sha256(sent.read_bytes()).hexdigest()
    back = tmp_path / "back.bin"
    vm.guest.get("/tmp/copy.bin", back)
    assert back.read_bytes() == sent.read_bytes()


def test_the_public_interface_copies_through_the_exchange_directory(boot_vm, tmp_path):
    vm = boot_vm()
    sent = tmp_path / "sent.bin"
    sent.write_bytes(bytes(range(256)) * 100)
    inside = vm.copy_in(sent)
    copied = vm.run(["cp", str(inside), "/tmp/again.bin"], timeout=30)
    assert copied.returncode == 0 and copied.splats == [], copied.stdout
    back = vm.copy_out("/tmp/again.bin", tmp_path / "back.bin")
    assert back.read_bytes() == sent.read_bytes()
    listed = vm.run(["sh", "-c", 'ls "$1"; exit 4', "sh", str(vm.exchange_dir)], timeout=30,
                    cwd="/tmp", env={"LC_ALL": "C"})
    assert listed.returncode == 4 and "sent.bin" in listed.stdout.split()


def test_keys_are_private_and_another_host_key_is_refused(boot_vm, tmp_path):
    vm = boot_vm()
    key = Path(vm.state.client_key)
    assert key.stat().st_mode & 0o777 == 0o600
    impostor = write_key_pair(tmp_path / "impostor")
    with pytest.raises(paramiko.SSHException, match="does not match"):
        Guest(vm.state.ssh_port, key, impostor)


def test_a_splat_fails_the_test_it_happened_in_and_only_that_one(boot_vm, tmp_path):
    vm = boot_vm()
    junit = tmp_path / "junit.xml"
    outcome = test_runner.run_pytest_in_vm(vm, [DATA / "provoke_splat.py"], junit=junit)
    assert outcome.exit_code != 0
    assert (outcome.passed, outcome.failed + outcome.errors) == (2, 1)
    assert [s.kind for s in outcome.splats] == ["WARNING"]
    failures = {case.get("name"): case.find("failure") if case.find("failure") is not None
                else case.find("error")
                for case in ET.parse(junit).getroot().iter("testcase")}
    assert failures["test_quiet_before"] is None and failures["test_quiet_after"] is None
    failure = failures["test_provokes_a_warning"]
    assert "lkdtm_WARNING" in (failure.text or "") + failure.get("message", "")


def test_a_second_boot_reuses_the_vm_and_another_kernel_restarts_it(boot_vm, kernel_image,
                                                                    tmp_path, vm_cache):
    first = boot_vm()
    assert boot_vm().state.pid == first.state.pid  # same image: the running VM serves
    other_image = tmp_path / "bzImage"
    other_image.write_bytes(kernel_image.read_bytes())
    second = boot_vm(image=other_image)
    assert second.state.pid != first.state.pid and second.state.image == str(other_image)
    vngs = [cmd for cmd in machine.processes_mentioning(vm_cache) if "/vng --run " in cmd]
    assert len(vngs) == 1 and str(other_image) in vngs[0]  # the first VM is gone
    assert second.run(["true"], timeout=30).returncode == 0
