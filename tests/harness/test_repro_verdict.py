"""What counts as reproduced, and the verdict's headline."""

from pathlib import Path

from harness.repro.bundle import Bundle, Expect, KernelSpec
from harness.repro.verdict import RunResult, StepOutcome, Verdict, judge, signature
from harness.vm.oracle import find_splats

CONSOLE = """\
[   12.345678] ------------[ cut here ]------------
[   12.345679] WARNING: CPU: 1 PID: 4242 at net/mptcp/pm_netlink.c:1510 \
mptcp_pm_nl_rm_addr_or_subflow+0x2f1/0x3c0
[   12.345680] Modules linked in:
[   12.345690] ---[ end trace 0000000000000000 ]---
"""


def splat():
    (found,) = find_splats(CONSOLE.splitlines())
    return found


def test_the_signature_drops_what_changes_between_runs():
    assert signature(splat()) == ("WARNING: at net/mptcp/pm_netlink.c:1510 "
                                  "mptcp_pm_nl_rm_addr_or_subflow")


def test_a_matching_splat_reproduces_and_others_are_kept_apart():
    run = judge(RunResult(1, 3.0, splats=[splat()]), Expect(splat=r"at net/mptcp/"))
    assert run.reproduced and run.matched.startswith("WARNING: at net/mptcp/pm_netlink.c")
    assert run.other_splats == []
    missed = judge(RunResult(2, 3.0, splats=[splat()]), Expect(splat=r"at net/ipv4/"))
    assert not missed.reproduced and missed.other_splats == [splat()]


def test_a_failed_step_or_its_output_reproduces():
    steps = [StepOutcome("join", 1, 2.0, False, "lost 42 bytes\n")]
    assert judge(RunResult(1, 2.0, steps=steps), Expect(step_failed="join")).matched == \
        "step join failed (exit 1)"
    shown = judge(RunResult(1, 2.0, steps=steps),
                  Expect(output_step="join", output_matches=r"lost \d+ bytes"))
    assert shown.reproduced
    passed = [StepOutcome("join", 0, 2.0, False, "ok\n")]
    assert not judge(RunResult(1, 2.0, steps=passed), Expect(step_failed="join")).reproduced


def test_a_hang_reproduces_only_when_expected():
    assert judge(RunResult(1, 9.0, hang=True), Expect(hang=True)).reproduced
    assert not judge(RunResult(1, 9.0, hang=True), Expect(any_splat=True)).reproduced


def verdict(runs, expect_reproduced=True):
    bundle = Bundle(Path("/b"), "bug", "a bug", KernelSpec(), None, (), Expect(any_splat=True))
    return Verdict(bundle, "6.12", expect_reproduced, runs)


def test_the_verdict_counts_runs_and_names_the_first():
    runs = [RunResult(1, 1.0), judge(RunResult(2, 1.0, splats=[splat()]), Expect(any_splat=True))]
    found = verdict(runs)
    assert found.as_expected
    assert "reproduced 1/2: WARNING: at net/mptcp/pm_netlink.c:1510" in found.headline()
    assert "(first in run 2)" in found.headline()
    assert not verdict(runs, expect_reproduced=False).as_expected


def test_on_a_fixed_kernel_any_stray_splat_fails_the_verdict():
    stray = judge(RunResult(1, 1.0, splats=[splat()]), Expect(splat="KASAN"))
    fixed = verdict([stray], expect_reproduced=False)
    assert not fixed.reproduced and not fixed.as_expected
    assert "not reproduced 0/1; 1 other splat(s)" in fixed.headline()
    assert verdict([RunResult(1, 1.0)], expect_reproduced=False).as_expected


def test_the_junit_attaches_each_run_s_evidence_files(tmp_path):
    from harness.runs.repro import junit_tree

    (tmp_path / "run-01").mkdir()
    for name in ("console.txt", "splats.txt"):
        (tmp_path / "run-01" / name).write_text("x")
    tree = junit_tree(verdict([RunResult(1, 1.0)]), tmp_path)
    out = tree.getroot().find("testcase[@name='run-01']/system-out").text
    assert out.splitlines()[1:] == [f"[[ATTACHMENT|{tmp_path / 'run-01' / name}]]"
                                    for name in ("console.txt", "splats.txt")]
