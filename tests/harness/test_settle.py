"""What the settle step's output means for a verdict (harness.vm.settle)."""

import os
import subprocess

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


def _run_around(after: settle.After, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", after.around(command)], capture_output=True, text=True,
                          env={**os.environ, "SETTLE_NS_TIMEOUT": "1"}, timeout=120)


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
