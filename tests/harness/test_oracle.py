"""The kernel-health oracle on console logs captured from our 6.12 kernel under virtme-ng:
LKDTM's WARNING, EXCEPTION (an oops that panics) and HUNG_TASK with a SysRq-w dump."""

from pathlib import Path

import pytest

from harness.vm.oracle import find_splats, splat_kind, strip_timestamp

CONSOLE = Path(__file__).parent / "data" / "console"


def lines(name: str) -> list[str]:
    return (CONSOLE / name).read_text().splitlines()


def test_lkdtm_warning_is_one_splat_from_cut_here_to_end_trace():
    [splat] = find_splats(lines("lkdtm-warning.log"))
    assert splat.kind == "WARNING"
    assert splat.title.startswith("WARNING: CPU: 1 PID: 47 at drivers/misc/lkdtm/bugs.c:112")
    assert "cut here" in splat.lines[0] and "end trace" in splat.lines[-1]
    assert any("lkdtm_do_action" in line for line in splat.lines)
    assert not any("done-warning" in line for line in splat.lines)


def test_lkdtm_oops_is_one_report_and_the_panic_it_causes_another():
    oops, panic = find_splats(lines("lkdtm-oops.log"))
    assert oops.kind == "BUG"
    assert oops.title == "BUG: kernel NULL pointer dereference, address: 0000000000000000"
    assert "Oops: Oops: 0002 [#1] SMP" in oops.text and "end trace" in oops.lines[-1]
    assert any("lkdtm_EXCEPTION" in line for line in oops.lines)
    assert (panic.kind, panic.title) == ("panic", "Kernel panic - not syncing: Fatal exception")


def test_a_blocked_task_dump_is_not_a_splat():
    assert find_splats(lines("lkdtm-hang.log")) == []


def test_a_clean_boot_has_no_splat():
    clean = [line for line in lines("lkdtm-warning.log") if "lkdtm" not in line][:20]
    assert find_splats(clean) == []


@pytest.mark.parametrize("line, kind", [
    ("BUG: KASAN: slab-use-after-free in mptcp_sendmsg+0x1c/0x40", "KASAN"),
    ("BUG: KFENCE: out-of-bounds read in test_alloc+0x12/0x40", "KFENCE"),
    ("watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [sh:47]", "soft lockup"),
    ("WARNING: possible circular locking dependency detected", "lockdep"),
    ("WARNING: suspicious RCU usage", "lockdep"),
    ("UBSAN: shift-out-of-bounds in net/mptcp/options.c:100:5", "UBSAN"),
    ("unreferenced object 0xffff888003a1c000 (size 2048):", "kmemleak"),
    ("INFO: task sh:46 blocked for more than 120 seconds.", "hung task"),
    ("rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", "RCU stall"),
    ("rcu: INFO: rcu_sched self-detected stall on CPU", "RCU stall"),
    ("kernel BUG at net/mptcp/protocol.c:123!", "BUG"),
    ("Kernel panic - not syncing: hung_task: blocked tasks", "panic"),
    ("mptcp: BUG fixed in 6.12", None),
    ("sysrq: Show Blocked State", None),
])
def test_each_kind_of_report_is_recognised(line, kind):
    assert splat_kind(line) == kind


def test_our_marker_ends_a_report_and_is_never_part_of_one():
    log = ["[    1.0] WARNING: CPU: 0 PID: 1 at net/mptcp/pm.c:1 f+0x1/0x2",
           "[    1.1]  f+0x1/0x2",
           "[    1.2] mptcp-lab: test end tests/mptcp/test_a.py::test_x",
           "[    1.3]  unrelated line"]
    [splat] = find_splats(log)
    assert len(splat.lines) == 2
    assert strip_timestamp(log[0]).startswith("WARNING: CPU: 0")


def test_a_kernel_with_printk_caller_ids_has_its_panic_found():
    """The debug variant logs "[   93.33][  T123] ...": the caller id must not hide a splat
    (it did: the host's console reader saw no panic on the debug kernel)."""
    [panic] = find_splats(lines("debug-kernel-panic.log"))
    assert (panic.kind, panic.title) == ("panic", "Kernel panic - not syncing: dumptest")
    assert any("lkdtm_PANIC" in line for line in panic.lines)


@pytest.mark.parametrize("prefix", ["[   93.332820] ", "[   93.332820][  T123] ",
                                    "[    3.100000][    C1] "])
def test_the_printk_prefix_is_stripped_with_or_without_a_caller_id(prefix):
    assert strip_timestamp(prefix + "WARNING: CPU: 1 PID: 7 at x.c:1") == \
        "WARNING: CPU: 1 PID: 7 at x.c:1"
