"""What the settle step's output means for a verdict (harness.vm.settle)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.vm import settle

LEAK_REPORT = """\
unreferenced object 0xffff888004d2c800 (size 512):
  comm "mptcp_connect", pid 812, jiffies 4294912345
  hex dump (first 32 bytes):
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
  backtrace (crc 5a1f0c3e):
    [<ffffffff8133a1b7>] __kmalloc_noprof+0x2a7/0x3c0
    [<ffffffff81f2c0de>] mptcp_pm_alloc_anno_list+0x5e/0x110
unreferenced object 0xffff888004d2ca00 (size 512):
  comm "mptcp_connect", pid 812, jiffies 4294912346
"""


def test_each_kmemleak_report_is_a_splat():
    found = settle.splats(0, LEAK_REPORT)
    assert [s.kind for s in found] == ["kmemleak", "kmemleak"]
    assert "mptcp_pm_alloc_anno_list" in found[0].text


def test_a_quiet_settle_is_no_splat_and_namespaces_left_are_only_reported():
    assert settle.splats(0, "") == []
    assert settle.splats(0, "settle: namespaces left behind: mlab-1-a ") == []


def test_a_settle_step_that_failed_is_a_failure_with_its_output():
    [found] = settle.splats(1, "settle: the netns cleanup did not run within 30 s")
    assert found.kind == "settle" and "did not run within 30 s" in found.text


def _run_around(after: settle.After, command: str, path: str | None = None
                ) -> subprocess.CompletedProcess:
    env = {**os.environ, "SETTLE_NS_TIMEOUT": "1", **({"PATH": path} if path else {})}
    return subprocess.run(["sh", "-c", after.around(command)], capture_output=True, text=True,
                          env=env, timeout=120)


def _ip_spy(directory):
    """A PATH whose `ip` logs its arguments, then is the real ip."""
    real, log = shutil.which("ip"), directory / "ip.log"
    spy = directory / "bin" / "ip"
    spy.parent.mkdir()
    spy.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real} "$@"\n')
    spy.chmod(0o755)
    return f"{spy.parent}:{os.environ['PATH']}", log


@pytest.mark.parametrize("command_settled", [False, True])
def test_a_command_that_settled_after_its_last_action_is_not_settled_twice(
        mptcp_kernel, tmp_path, command_settled):
    """The sentinel namespaces (the netns cleanup wait) only when the command did not say,
    through $MPTCP_LAB_SETTLED_FILE, that it ran the settle step last; a namespace it left
    is reported either way."""
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    after = settle.After(exchange, f"mlab-test-{os.getpid()}")
    path, log = _ip_spy(tmp_path)
    left = f"mlab-left-{os.getpid()}"
    says = f'; touch "${settle.SETTLED_ENV}"' if command_settled else ""
    try:
        done = _run_around(after, f"ip netns add {left}{says}", path)
    finally:
        subprocess.run(["ip", "netns", "del", left], capture_output=True)
    assert done.returncode == 0, done.stderr
    status, report = after.result()
    assert status == 0 and report.strip() == f"settle: namespaces left behind: {left}"
    sentinels = [line for line in log.read_text().splitlines() if "-batch" in line]
    assert len(sentinels) == (0 if command_settled else 2)
    assert not list(Path("/run").glob(f"{after.name}.*"))


def test_after_runs_the_settle_step_in_the_commands_shell(mptcp_kernel, tmp_path):
    """The line keeps the command's output and exit status; the settle step's report and
    status are in the exchange files, with the namespace the command left (and not the one
    that was there before it)."""
    after = settle.After(tmp_path, f"mlab-test-{os.getpid()}")
    before, left = f"mlab-before-{os.getpid()}", f"mlab-left-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", before], check=True)
    try:
        done = _run_around(after, f"echo out; echo err >&2; ip netns add {left}; exit 3")
    finally:
        for name in (before, left):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    assert after.command_ended.exists()
    status, report = after.result()
    assert status == 0
    assert report.strip() == f"settle: namespaces left behind: {left}"
    assert not any(tmp_path.iterdir())  # result() removed the files


def test_after_reports_a_settle_step_that_left_no_status_as_failed(tmp_path):
    status, report = settle.After(tmp_path, "never-ran").result()
    assert status != 0 and "no report" in report
    assert settle.splats(status, report)[0].kind == "settle"


def _peer_gone_after_settle(name: str, peer: str) -> bool:
    """A namespace with a veth peer here, removed just before settle_here: is the peer (and
    so the namespace's cleanup) gone when settle_here returns?"""
    from harness import netns

    netns.create(name)
    try:
        subprocess.run(["ip", "-n", name, "link", "add", "p", "type", "veth", "peer", "name",
                        peer, "netns", "1"], check=True, capture_output=True)
    finally:
        netns.remove(name)
    assert settle.settle_here(settle.named_namespaces()) == (0, "")
    return not Path(f"/sys/class/net/{peer}").exists()


def test_settle_here_returns_once_namespaces_freed_before_it_are_cleaned_up(mptcp_kernel):
    assert _peer_gone_after_settle(f"mlab-settle-test-{os.getpid()}", f"mlt{os.getpid()}")


def test_settle_here_reports_namespaces_left_and_leaves_no_sentinel(mptcp_kernel,
                                                                    monkeypatch):
    from harness import netns

    monkeypatch.setenv("SETTLE_NS_TIMEOUT", "0.3")
    before = settle.named_namespaces()
    left = f"mlab-left-{os.getpid()}"
    netns.create(left)
    try:
        status, report = settle.settle_here(before)
    finally:
        netns.remove(left)
    assert (status, report) == (0, f"settle: namespaces left behind: {left}")
    assert not list(Path("/sys/class/net").glob(f"mls{os.getpid()}*"))
