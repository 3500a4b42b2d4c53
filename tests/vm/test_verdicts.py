"""Verdicts that cannot be green on a broken kernel, proved against real kernels in VMs:

- a kernel built with one patch of our series left out makes `invoke test` fail, naming the
  tests of that patch (they do not turn into skips);
- a one-shot WARNING in the middle of a selftest slot fails it, even with a retry allowed;
- a WARNING logged after the command returned, while the namespaces it left are torn down,
  is still caught (the settle step).
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from harness import backports
from harness.kernel import build as kernel_build
from harness.kernel import patches
from harness.kernel.record import is_cut_of, patch_slug
from harness.kernel.selftests_build import build_selftests
from harness.paths import PROJECT_ROOT, cache_dir
from harness.runs.selftest_plan import Slot
from harness.runs.selftests import Policy, run_slot
from harness.vm import machine

LKDTM = "/sys/kernel/debug/provoke-crash/DIRECT"
MINRTT_PATCH = "mptcp-sched-add-the-minrtt-scheduler"


def test_a_warning_after_the_command_returned_is_caught_by_the_settle_step(boot_vm):
    vm = boot_vm()
    # the command leaves a namespace behind and returns at once; two seconds later, a
    # background job warns and only then removes the namespace
    late = (f"ip netns add mlab-late && "
            f"(sleep 2; echo WARNING > {LKDTM}; ip netns del mlab-late) >/dev/null 2>&1 &")
    report = vm.run(["sh", "-c", late], timeout=30)
    assert report.returncode == 0
    assert [s.kind for s in report.splats] == ["WARNING"], report.settle
    assert "lkdtm_WARNING" in report.splats[0].text
    assert vm.named_namespaces() == []
    quiet = vm.run(["true"], timeout=30)
    assert quiet.splats == [] and quiet.settle == ""


def test_a_warning_in_a_selftest_slot_fails_it_even_with_a_retry(boot_vm, kernel_image):
    suite = build_selftests(kernel_image)
    vm = boot_vm()
    # one WARNING, 10 s into the script: a rerun would pass, and must not be made
    vm.guest.run(f"(sleep 10; echo WARNING > {LKDTM}) >/dev/null 2>&1 &", timeout=30)
    policy = Policy(suite.timeout_s, expect_all_features=True, retries=1,
                    path_dirs=tuple(backports.path_dirs(cache_dir())))
    result = run_slot(vm, suite, Slot("diag.sh"), policy)
    assert result.status == "fail" and not result.flaky, result.note
    assert result.splats and result.splats[0].startswith("WARNING"), result.note
    assert "attempt" not in result.note  # one attempt: the splat was not retried away
    assert [c.name for c in result.cases if c.status == "fail"] == ["diag.sh: kernel splat"]


@pytest.fixture
def trimmed_series(tmp_path):
    """Our series without its minrtt patch, as a patch directory."""
    directory = tmp_path / "series-without-minrtt"
    directory.mkdir()
    every = patches.read_series(kernel_build.DEFAULT_PATCHES)
    kept = [p for p in every if not is_cut_of(patch_slug(p.name), MINRTT_PATCH)]
    assert len(kept) == len(every) - 1, f"no single {MINRTT_PATCH} patch in {every}"
    for patch in kept:
        (directory / patch.name).symlink_to(patch.path)
    (directory / "series").write_text("".join(f"{p.name}\n" for p in kept))
    return directory


@pytest.fixture
def shared_build_cache(sharing_cache):
    """A cache for `invoke` that shares the real cache's source, builds and ccache, with a
    VM directory of its own; the normal build is restored to the whole series after."""
    real = cache_dir()
    cache = sharing_cache
    yield cache
    machine.halt(cache)
    restored = kernel_build.build(kernel_build.BuildRequest(cache=real))
    assert restored.record.has_patch(MINRTT_PATCH)


def invoke(cache, *args, timeout=1800):
    env = {**os.environ, "INVOKE_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_a_kernel_without_a_patch_of_the_series_fails_that_patchs_tests(
        tmp_path, trimmed_series, shared_build_cache):
    built = invoke(shared_build_cache, "build", "--patches", str(trimmed_series))
    assert built.returncode == 0, built.stdout + built.stderr
    junit = tmp_path / "junit.xml"
    ran = invoke(shared_build_cache, "test", "-k", "schedulers_are_listed or accepts_the_name",
                 "--junit", str(junit))
    output = ran.stdout + ran.stderr
    assert ran.returncode != 0, output
    assert machine.processes_mentioning(shared_build_cache) == []
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    failed = {n for n, c in cases.items()
              if c.find("failure") is not None or c.find("error") is not None}
    skipped = {n for n, c in cases.items() if c.find("skipped") is not None}
    assert skipped == set(), output
    assert failed == {"test_both_schedulers_are_listed_as_available",
                      "test_the_scheduler_sysctl_accepts_the_name[minrtt]"}, output
    # roundrobin was built in: its test ran and passed
    assert "test_the_scheduler_sysctl_accepts_the_name[roundrobin]" in cases
    assert f"lacks the patch '{MINRTT_PATCH}'" in output
