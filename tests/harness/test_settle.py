"""What the settle step's output means for a verdict (harness.vm.settle)."""

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
