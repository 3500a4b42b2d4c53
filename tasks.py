"""mptcp-lab tasks. Each task parses its flags and calls into `harness`; see README.md."""

from __future__ import annotations

import json

from invoke import Collection, Exit, task

from harness import interrupts
from harness.errors import HarnessError
from harness.paths import TESTS_DIR, cache_dir, not_a_checkout

interrupts.stop_on_signals()  # Ctrl-C and SIGTERM stop every task the same way
if not_a_checkout():  # the harness imported from a non-editable install
    raise SystemExit(f"error: {not_a_checkout()}")


def _fail(exc: HarnessError, code: int = 1) -> Exit:
    return Exit(f"error: {exc}", code=code)


@task
def setup(c):
    """Install the Debian packages the project needs (root, Debian 12; safe to rerun), and
    a newer iproute2 from bookworm-backports into the cache, for the kernel's selftests."""
    from harness import backports, debian

    try:
        installed = debian.install()
        iproute2 = backports.fetch_iproute2(_cache(c))
    except HarnessError as exc:
        raise _fail(exc) from None
    print(f"setup: installed {' '.join(installed)}" if installed
          else "setup: every Debian package is already installed")
    print(f"setup: selftests use {iproute2} from {backports.root(_cache(c))}")


COVERAGE_HELP = ("collect net/mptcp's gcov counters per test and write an lcov report under "
                 "reports/coverage-<time>/ (a kernel of invoke build --variant coverage)")

KEEP_ON_HANG_HELP = ("a command that outlives its timeout is left running and the VM up, to "
                     "look at it (invoke shell, inspect, gdb); invoke halt stops it")
SELFTEST_HELP = {
    "only": "a selftest script to run, with its arguments (repeatable): 'diag.sh', "
            "'mptcp_join.sh -f -s' (test groups), 'mptcp_join.sh 42' (one subtest)",
    "expect_all_features": "a skipped selftest is a failure "
                           "(the suite's SELFTESTS_MPTCP_LIB_EXPECT_ALL_FEATURES)",
    "retry_failed": "rerun a failed script up to N times; a pass on retry is reported as flaky",
    "timeout": "seconds per script (default: the suite's settings file, 1800)",
    "verbose": "stream the scripts' output",
    "capture": "the scripts that can (mptcp_connect.sh and its forms, mptcp_join.sh, "
               "simult_flows.sh) capture their traffic with -c; a failed slot keeps the pcaps "
               "with its evidence (each test takes about 2 s longer)",
}


@task(iterable=["only"], auto_shortflags=False, help={  # -h is help, not --host
    "host": "run on the kernel of this machine instead of our kernel in the VM",
    "k": "only tests matching this pytest -k expression",
    "junit": "write a JUnit XML report to this path",
    "all": "also KUnit and the kernel's MPTCP selftests, in the same VM, one report",
    "keep": "keep the evidence (pcaps, MIB deltas, output) of passing tests too",
    "coverage": COVERAGE_HELP,
    "keep_on_hang": KEEP_ON_HANG_HELP,
    **SELFTEST_HELP,
})
def test(c, host=False, k=None, junit=None, all=False, keep=False, only=None,
         expect_all_features=False, retry_failed=0, timeout=None, verbose=False,
         coverage=False, keep_on_hang=False, capture=False):
    """Run the MPTCP behaviour tests (tests/mptcp) in the VM, or on this kernel with --host.

    Without --host, a VM is booted for the run if none is up, and halted after. A failed
    test leaves its evidence in reports/test-<time>/<test>/.
    """
    from pathlib import Path

    from harness import testrun

    junit = Path(junit).resolve() if junit else None
    if host and (coverage or keep_on_hang):
        raise Exit("error: --coverage and --keep-on-hang are about our kernel in the VM, "
                   "not --host")
    if capture and not all:
        raise Exit("error: --capture is about the kernel's selftests: add --all (or run "
                   "invoke selftests --capture)")
    if host:
        _run_tests([TESTS_DIR / "mptcp"], k, junit, testrun.host_target(), evidence=True,
                   keep_passing=keep)
        return
    selftests = _selftest_options(only, expect_all_features, retry_failed, timeout,
                                  verbose, capture) if all else None
    _run_in_vm(c, junit, TESTS_DIR / "mptcp", k, selftests, kunit=None, keep_passing=keep,
               coverage=coverage, keep_on_hang=keep_on_hang)


def _selftest_options(only, expect_all_features, retry_failed, timeout, verbose, capture):
    from harness.runs import full as fullrun

    return fullrun.SelftestOptions(tuple(only or ()), expect_all_features, int(retry_failed),
                                   int(timeout) if timeout else None, verbose, capture)


def _run_in_vm(c, junit, tests_dir, keyword, selftests, kunit, keep_passing=False,
               coverage=False, keep_on_hang=False):
    """Boot (or reuse) the VM, run what was asked in it, report; exit non-zero on failure."""
    from harness.runs import full as fullrun
    from harness.vm import machine

    cache = _cache(c)
    try:
        with machine.session(_boot_options(cache), cache) as vm:
            run = fullrun.run_in_vm(vm, tests_dir, keyword, selftests, kunit, keep_passing,
                                    coverage, keep_on_hang)
    except HarnessError as exc:
        raise _fail(exc) from None
    code = fullrun.report(run, junit)
    if code != 0:
        raise Exit(code=code)


@task(iterable=["only"], help={"junit": "write a JUnit XML report to this path",
                               "coverage": COVERAGE_HELP, "keep_on_hang": KEEP_ON_HANG_HELP,
                               **SELFTEST_HELP})
def selftests(c, only=None, expect_all_features=False, retry_failed=0, timeout=None,
              verbose=False, junit=None, coverage=False, keep_on_hang=False, capture=False):
    """Build the kernel's MPTCP selftests (same tree and series) and run them in the VM."""
    from pathlib import Path

    options = _selftest_options(only, expect_all_features, retry_failed, timeout, verbose,
                                capture)
    _run_in_vm(c, Path(junit).resolve() if junit else None, None, None, options, kunit=False,
               coverage=coverage, keep_on_hang=keep_on_hang)


@task(iterable=["merge"], auto_shortflags=False, help={  # -h is help, not --changed
            "report": "a coverage report directory (reports/coverage-...) or an lcov tracefile",
            "merge": "another report of the same kernel (repeatable): write one report of all "
                     "of them (runs made apart), then read that one",
            "compare": "another report: the lines and functions one covers and the other not",
            "function": "list the tests (and selftest slots) during which this function ran",
            "split": "what only our tests, only the selftests, only KUnit reach",
            "changed": "the lines the patch series added or modified, and which of them ran",
            "base": "with --changed: what the change is against, a tree or a git revision of "
                    "the built tree (default: Debian's unpatched source)"})
def coverage(c, report, merge=None, compare=None, function=None, split=False, changed=False,
             base=None):
    """Read a coverage report of net/mptcp (invoke test/selftests --coverage wrote it)."""
    from pathlib import Path

    from harness.coverage import query
    from harness.coverage import report as coverage_report

    try:
        if merge:
            reports = [Path(report), *map(Path, merge)]
            report = coverage_report.combine(reports, "net/mptcp, merged").directory
            print(f"merged {len(reports)} reports into {report}")
        print(query.describe(Path(report), Path(compare) if compare else None, function,
                             split, changed, base))
    except HarnessError as exc:
        raise _fail(exc) from None


@task(help={"junit": "write a JUnit XML report to this path"})
def kunit(c, junit=None):
    """Run the MPTCP KUnit suites (mptcp-crypto, mptcp-token) in the VM's kernel."""
    from pathlib import Path

    _run_in_vm(c, Path(junit).resolve() if junit else None, None, None, None, kunit=True)


@task(help={"k": "only tests matching this pytest -k expression",
            "junit": "write a JUnit XML report to this path"})
def check(c, k=None, junit=None):
    """ruff, then the harness unit tests and tests/mptcp on this machine's kernel."""
    from pathlib import Path

    from harness import testrun

    code = testrun.lint()
    if code != 0:
        raise Exit("error: ruff found problems (see above)", code=code)
    _run_tests([TESTS_DIR / "harness", TESTS_DIR / "mptcp"], k, Path(junit) if junit else None,
               testrun.host_target())


@task(help={"junit": "write a JUnit XML report to this path"})
def oracle(c, junit=None):
    """Provoke splats, hangs and failed boots in VMs; check the kernel-health oracle catches each.

    LKDTM's WARNING and oops, a hung command and kernels that cannot boot, each in a VM of
    its own, with the kernel that `invoke build` made last.
    """
    from pathlib import Path

    _run_tests([TESTS_DIR / "vm"], None, Path(junit) if junit else None,
               "oracle checks in VMs")


def _run_tests(paths, keyword, junit, target, evidence=False, keep_passing=False):
    from harness import testrun

    try:
        outcome = testrun.run_pytest(paths, keyword, junit, evidence=evidence,
                                     keep_passing=keep_passing)
    except HarnessError as exc:
        raise _fail(exc) from None
    print(outcome.summary(target))
    if outcome.exit_code != 0:
        raise Exit(code=outcome.exit_code)


@task(help={"file": "path of a topology TOML file"})
def topo_check(c, file):
    """Validate a topology file and print what it describes."""
    from harness.topology import TopologyError, load

    try:
        spec = load(file)
    except TopologyError as exc:
        raise _fail(exc) from None
    hosts = ", ".join(spec.hosts)
    print(f"{file}: ok: topology '{spec.name}' with hosts {hosts} and {len(spec.links)} links")


def _cache(c):
    return cache_dir(c.config.get("cache_dir"))


def _state_file(c):
    return _cache(c) / "topologies-up.json"


@task(help={"name": "a topology of topologies/ (e.g. two-paths) or a path to a TOML file"})
def topo_up(c, name):
    """Bring a topology up on this machine for manual work; `invoke topo.down` removes it."""
    from harness import topology

    state_file = _state_file(c)
    try:
        topo = topology.bring_up(name, state_file)
    except HarnessError as exc:
        raise _fail(exc) from None
    print(topo.describe())
    print(f"remove it with: invoke topo.down   (state in {state_file})")


@task
def topo_down(c):
    """Remove every topology that `invoke topo.up` brought up (by the names it recorded)."""
    from harness import topology

    try:
        removed = topology.bring_down(_state_file(c))
    except HarnessError as exc:
        raise _fail(exc) from None
    print(f"removed namespaces: {json.dumps(removed)}" if removed else "no topology was up")


@task(iterable=["config_item"], help={
    "tree": "build this kernel tree (e.g. a mptcp_net-next checkout) instead of Debian's 6.12",
    "patches": "apply this series instead of ours: a directory (a series file, or git "
               "format-patch output) or an mbox (format-patch --stdout, a mailing-list thread)",
    "no-patches": "build the source without any patch series",
    "variant": "normal, debug (KASAN, lockdep, kmemleak, ...) or coverage (gcov of net/mptcp)",
    "config-item": "an extra option such as CONFIG_X=y (repeatable)",
    "print": "print the path of the kernel image it would boot, build nothing",
})
def build(c, tree=None, patches=None, no_patches=False, variant="normal", config_item=None,
          print_=False):
    """Build a kernel with our MPTCP patch series: lean config, ccache, out-of-tree, cached."""
    from pathlib import Path

    from harness.kernel import build as kernel_build
    from harness.kernel import kconfig

    request = kernel_build.BuildRequest(
        cache=cache_dir(c.config.get("cache_dir")), tree=tree,
        patches_dir=Path(patches).resolve() if patches else None, no_patches=no_patches,
        variant=variant, config_items=tuple(config_item or ()))
    try:
        if print_:
            print(kernel_build.image_path(request))
            return
        result = kernel_build.build(request)
    except HarnessError as exc:
        raise _fail(exc) from None
    what = "up to date" if result.log is None else f"built (log: {result.log})"
    print(f"kernel {what}: {result.record.image}")
    if not_taken := kconfig.tree_options_not_taken(result.build_dir):
        print(f"note: {len(not_taken)} option(s) of the kernel's own config fragments are not "
              f"in this build (not in this tree, or against our base): {', '.join(not_taken)}")
    kernel_build.remember_last_image(request.cache, Path(result.record.image))


def _boot_options(cache, image=None, cpus=2, memory="2G", timeout=None, append=()):
    from pathlib import Path

    from harness.kernel import build as kernel_build
    from harness.vm import machine

    image = Path(image) if image else kernel_build.last_image(cache)
    return machine.BootOptions(image=image, cpus=int(cpus), memory=memory,
                               timeout=float(timeout or machine.boot_timeout_for(image)),
                               append=tuple(append or ()))


@task(iterable=["append"], help={
    "image": "the kernel image to boot (default: the last one `invoke build` built)",
    "cpus": "guest CPUs",
    "memory": "guest memory (QEMU syntax, e.g. 2G)",
    "timeout": "seconds to wait for the guest's SSH prompt (default 60; 180 for a KASAN kernel)",
    "append": "an extra kernel command-line option (repeatable)",
})
def boot(c, image=None, cpus=2, memory="2G", timeout=None, append=None):
    """Boot our kernel in a background VM (QEMU via virtme-ng), reachable over SSH."""
    from harness.vm import machine

    cache = _cache(c)
    try:
        vm = machine.boot(_boot_options(cache, image, cpus, memory, timeout, append), cache)
    except HarnessError as exc:
        raise _fail(exc) from None
    print(f"vm: up {vm.describe()}")


@task
def halt(c):
    """Stop the VM and remove its state and keys."""
    from harness.vm import machine

    print("vm: halted" if machine.halt(_cache(c)) else "vm: none was running")


def _running_vm(c):
    from harness.vm import machine

    cache = _cache(c)
    state = machine.running(cache)
    if state is None:
        raise Exit("error: no VM is running (start one with: invoke boot)", code=1)
    return machine.Vm(state, cache)


@task(help={"cmd": "the shell command to run in the VM",
            "timeout": "seconds before the command is cut (after a blocked-task dump)",
            "keep_on_hang": KEEP_ON_HANG_HELP})
def exec_(c, cmd, timeout=600, keep_on_hang=False):
    """Run one command in the VM; its output and exit status are this task's."""
    import sys

    vm = _running_vm(c)
    try:
        report = vm.run(["sh", "-c", cmd], float(timeout), output=lambda t: (sys.stdout.write(t),
                                                               sys.stdout.flush()),
                        keep_on_hang=keep_on_hang)
    except HarnessError as exc:
        raise _fail(exc) from None
    if report.settle:
        print(f"--- after the command (settle step) ---\n{report.settle}", file=sys.stderr)
    for splat in report.splats:
        print(f"--- kernel splat during the command ---\n{vm.decoded(splat)}", file=sys.stderr)
    if report.splats:
        raise Exit(f"error: the kernel logged {len(report.splats)} splat(s): "
                   + "; ".join(map(str, report.splats)), code=1)
    if report.returncode != 0:
        raise Exit(code=report.returncode)


@task(help={"timeout": "seconds before the guest command is cut",
            "core": "read this dump of a panicked guest instead of the running VM (the "
                    "path a panic printed, e.g. ~/.cache/mptcp-lab/vm-last-vmcore)",
            "vmlinux": "the vmlinux of the dump's kernel (default: the one its .json names)"})
def inspect(c, timeout=600, core=None, vmlinux=None):
    """Every MPTCP connection of the VM's kernel as the kernel holds it, read with drgn:
    msk state and data-level sequence numbers, PM state, scheduler, each subflow. Needs a
    kernel with debug info (invoke build --variant debug). With --core, a dump of a guest
    that panicked, read on the host: the end of its log, where it panicked, its connections."""
    import sys

    from harness.mptcp.kernel_view import config_lacks, lacks_why

    if core is not None:
        from pathlib import Path

        raise Exit(code=_inspect_core(Path(core).expanduser(), vmlinux))
    vm = _running_vm(c)
    record = vm.build_record()
    if record is None:
        raise Exit("error: the VM's kernel has no build record of ours (booted from outside "
                   "our builds, or rebuilt since): no vmlinux to read it with", code=1)
    if missing := config_lacks(record.vmlinux):
        raise Exit(f"error: {lacks_why(missing)}", code=1)
    try:
        report = vm.run_module("harness.mptcp.kernel_view", [record.vmlinux],
                               float(timeout) * vm.slowdown,
                               output=lambda t: (sys.stdout.write(t), sys.stdout.flush()))
    except HarnessError as exc:
        raise _fail(exc) from None
    if report.returncode != 0:
        raise Exit(code=report.returncode)


def _inspect_core(core, vmlinux: str | None) -> int:
    from harness.mptcp import kernel_view
    from harness.vm.vmcore import DumpRecord

    if not core.is_file():
        raise Exit(f"error: no memory dump at {core}", code=1)
    record = DumpRecord.load(core)
    vmlinux = vmlinux or (record.vmlinux if record else None)
    if not vmlinux:
        raise Exit(f"error: {DumpRecord.path_for(core)} does not say which kernel {core} is "
                   f"of: give its vmlinux (--vmlinux)", code=1)
    if missing := kernel_view.config_lacks(vmlinux):
        raise Exit(f"error: {kernel_view.lacks_why(missing)}", code=1)
    return kernel_view.main([vmlinux, str(core)])


@task(help={"command": "a gdb command to run, then detach (repeatable; none: an interactive "
                       "session)",
            "break_at": "stop in this function (repeatable); with --command, wait for it, "
                        "print the backtrace, run the commands and detach",
            "timeout": "seconds a scripted session may wait for its breakpoint"},
      iterable=["command", "break_at"])
def gdb(c, command=None, break_at=None, timeout=300):
    """gdb on the VM's kernel through QEMU's gdb stub, with the build's vmlinux and the
    kernel's lx- helpers (lx-dmesg, lx-ps, ...). Needs the debug variant. The guest stops
    while gdb holds it; detaching lets it go on."""
    import os
    import sys
    from pathlib import Path

    from harness.vm import gdb as vm_gdb

    breakpoints = break_at or []
    vm = _running_vm(c)
    record = vm.build_record()
    if record is None:
        raise Exit("error: the VM's kernel has no build record of ours: no vmlinux for gdb",
                   code=1)
    run_dir, vmlinux = Path(vm.state.run_dir), Path(record.vmlinux)
    try:
        if not command:
            argv = vm_gdb.interactive_argv(run_dir, vmlinux, breakpoints)
            os.execvp(argv[0], argv)  # gdb takes the terminal; nothing of ours stays behind
        result = vm_gdb.batch(run_dir, vmlinux, command, breakpoints, float(timeout))
    except HarnessError as exc:
        raise _fail(exc) from None
    print(result.stdout, end="")
    print(result.stderr, end="", file=sys.stderr)
    raise Exit(code=result.returncode)


@task
def shell(c):
    """An interactive shell in the VM."""
    from harness.vm import shell as vm_shell

    raise Exit(code=vm_shell.interactive(_running_vm(c).guest))


BENCHMARKS = ("throughput", "boot", "loop", "repro", "build", "bisect", "fixed-by")
BISECT_BUNDLE = "repros/pm-rm-endp-id-avail"


@task(help={"only": f"run only this benchmark: {', '.join(BENCHMARKS)}",
            "runs": "runs per case (the median is reported); per commit for bisect",
            "bundle": f"the bundle --only repro runs and whose revert --only bisect bisects "
                      f"(default {BISECT_BUNDLE})"})
def bench(c, only=None, runs=5, bundle=BISECT_BUNDLE):
    """Benchmarks (medians of --runs): throughput of one path vs two, boot to SSH, the
    overhead of a guest command and of `test -k ONE` on a booted VM; the overhead of one
    run of a reproduction only with --only repro; kernel build times only with --only
    build; a bisection over a demo tree of 8 commits around a real fix's revert only with
    --only bisect, and the search for the commit that brings the fix back (bisect
    --fixed-by) only with --only fixed-by."""
    if only is not None and only not in BENCHMARKS:
        raise Exit(f"error: unknown benchmark {only!r}; known: {', '.join(BENCHMARKS)}", code=2)
    from harness.bench import boot_times, build_times, throughput
    from harness.kernel.build import last_image

    try:
        if only in (None, "throughput"):
            results = throughput.measure(runs=int(runs))
            print(f"throughput on topology {throughput.TOPOLOGY} ({runs} runs of 50 MB each):")
            for result in results:
                print(result.line())
        if only in (None, "boot"):
            cache = _cache(c)
            print(f"boot of {last_image(cache)} ({runs} runs each):")
            for result in boot_times.measure(last_image(cache), cache, runs=int(runs)):
                print(result.line())
        if only in (None, "loop"):
            from harness.bench import loop_times

            cache = _cache(c)
            print(f"the edit-test loop on a booted VM of {last_image(cache)} ({runs} runs):")
            for result in loop_times.measure(last_image(cache), cache, runs=int(runs)):
                print(result.line())
        if only == "repro":  # builds the bundle's kernel if needed: only when asked for by name
            from harness.bench import repro_times
            from harness.repro import bundle as bundles

            loaded = bundles.load(bundle)
            print(f"one run of {loaded.name} on a booted VM ({runs} runs after one to warm up):")
            for result in repro_times.measure(loaded, _cache(c), runs=int(runs)):
                print(result.line())
        if only == "build":  # tens of minutes: only when asked for by name
            for line in build_times.measure(_cache(c)):
                print(line, flush=True)  # one line per case, as each is measured
        if only == "bisect":  # minutes: only when asked for by name
            from harness.bench import bisect_demo
            from harness.repro import bundle as bundles

            for line in bisect_demo.measure(bundles.load(bundle), _cache(c), int(runs)):
                print(line, flush=True)
        if only == "fixed-by":  # minutes: only when asked for by name
            from harness.bench import bisect_demo
            from harness.repro import bundle as bundles

            for line in bisect_demo.measure_fixed_by(bundles.load(bundle), _cache(c),
                                                     int(runs)):
                print(line, flush=True)
    except HarnessError as exc:
        raise _fail(exc) from None


@task(help={"tree": "check a series against your own kernel tree instead of Debian's source",
            "patches": "another series: a directory (a series file, or git format-patch "
                       "output) or an mbox file (default kernel_patches/)",
            "no_build": "only run checkpatch",
            "without_mptcp": "also build the whole series with CONFIG_MPTCP=n"})
def patches_check(c, tree=None, patches=None, no_build=False, without_mptcp=False):
    """checkpatch --strict on each patch, then a build after each patch in turn."""
    from dataclasses import replace
    from pathlib import Path

    from harness.kernel import build as kernel_build
    from harness.kernel import patchcheck

    # unlike invoke build, a user's --tree is checked against our series unless told otherwise
    request = kernel_build.BuildRequest(
        cache=_cache(c), tree=tree,
        patches_dir=Path(patches).resolve() if patches else kernel_build.DEFAULT_PATCHES)
    try:
        reports = patchcheck.check_series(request, build_each=not no_build)
        print(patchcheck.table(reports))
        for report in reports:
            if report.checkpatch_output:
                print(f"\n--- checkpatch {report.name}\n{report.checkpatch_output}")
        broken = patchcheck.first_broken(reports)
        if broken:
            print(f"\nfirst patch that breaks the build: {broken.name}\n"
                  + "\n".join(broken.build_errors))
        elif without_mptcp:
            result = kernel_build.build(replace(request, variant="no-mptcp"))
            print(f"whole series with CONFIG_MPTCP=n: builds ({result.record.image})")
    except HarnessError as exc:
        raise _fail(exc) from None
    if not all(r.checkpatch_clean for r in reports) or broken:
        raise Exit("patches.check: see above", code=1)


@task(help={"tree": "the kernel git tree the series is developed in",
            "base": "the revision the series applies to (its commits are base..head)",
            "head": "the series' last commit (default HEAD)",
            "out": "the series directory to write (default kernel_patches/); its "
                   "export.toml names the author, subject prefix and version"})
def patches_export(c, tree, base, head="HEAD", out=None):
    """Write the series from a git branch: git format-patch as export.toml says, the cover
    letter's title and blurb carried over, the series file updated."""
    from pathlib import Path

    from harness.kernel import build as kernel_build
    from harness.kernel import export

    try:
        done = export.export(Path(tree).expanduser().resolve(), base, head,
                             Path(out).resolve() if out else kernel_build.DEFAULT_PATCHES)
    except HarnessError as exc:
        raise _fail(exc) from None
    for path in [done.cover_letter, *done.patches]:
        print(f"wrote {path}")
    for name in done.removed:
        print(f"removed {name}")
    if not done.cover_filled:
        print(f"write the cover letter's title and blurb: {done.cover_letter}")
    print("next: invoke patches.check")


REPRO_KERNEL_HELP = {
    "tree": "build this git tree instead of the bundle's kernel source",
    "commit": "with --tree: build this revision (in a clone under the cache)",
    "patches": "apply this series (directory or mbox) instead of the bundle's",
    "variant": "normal, debug or coverage, instead of the bundle's (default debug)",
    "runs": "number of runs (default: the bundle's, else 10)",
    "junit": "also write the JUnit XML report to this path",
}


@task(help={"bundle": "the bundle directory (with repro.toml), e.g. repros/NAME",
            "until_reproduced": "stop at the first run that reproduces",
            "without_patches": "build without the bundle's patches (the fixed kernel): "
                               "expected NOT to reproduce",
            "both_ways": "run the bundle as written (expected to reproduce), then without its "
                         "patches (expected not to): what a revert bundle must show",
            "from_syzbot": "write a new bundle in BUNDLE from this syzkaller C reproducer "
                           "(and run nothing)",
            "config": "with --from-syzbot: the report's kernel .config (its MPTCP items, and "
                      "those the reproducer names, go into the bundle)",
            "coverage": "build the coverage variant and report what each run reached of "
                        "net/mptcp (gcov counters per run, a report in the evidence directory)",
            **REPRO_KERNEL_HELP})
def repro(c, bundle, runs=None, until_reproduced=False, without_patches=False, tree=None,
          commit=None, patches=None, variant=None, junit=None, from_syzbot=None, config=None,
          both_ways=False, coverage=False):
    """Reproduce a bug report: build the bundle's kernel, run it N times in a VM, judge.

    Exit status 0 when the result is as expected (reproduced; with --without-patches: not
    reproduced and no splat), 1 when not, 2 when the bundle or the kernel is broken.
    """
    from dataclasses import replace
    from pathlib import Path

    from harness.repro import bundle as bundles
    from harness.runs import repro as repro_run

    if from_syzbot:
        from harness.repro import syzbot

        try:
            written = syzbot.write_bundle(Path(bundle), Path(from_syzbot),
                                          Path(config) if config else None)
            bundles.load(bundle)  # what we wrote must load
        except HarnessError as exc:
            raise _fail(exc, code=2) from None
        print(f"wrote {written}; check it, then run: invoke repro {bundle}")
        return
    options = repro_run.ReproOptions(
        runs=int(runs) if runs else None, until_reproduced=until_reproduced,
        without_patches=without_patches, tree=tree, commit=commit,
        patches=Path(patches).resolve() if patches else None, variant=variant,
        junit=Path(junit).resolve() if junit else None, coverage=coverage)
    ways = [options, replace(options, without_patches=True, until_reproduced=False,
                             junit=None)] if both_ways else [options]
    verdicts = []
    try:
        loaded = bundles.load(bundle)
        for way in ways:
            verdicts.append(repro_run.run_bundle(loaded, _cache(c), way))
    except HarnessError as exc:
        raise _fail(exc, code=2) from None
    for verdict in verdicts:
        print(verdict.headline())
    if not all(v.as_expected for v in verdicts):
        raise Exit(code=1)


@task(help={"bundle": "the bundle directory (with repro.toml)",
            "tree": "the git kernel tree to bisect (never written to: a clone in the cache "
                    "is used)",
            "good": "a revision that does not reproduce",
            "bad": "a revision that reproduces",
            "runs": "runs per commit before calling it good (default 3)",
            "fixed_by": "find the commit that fixed the bug: --bad is an older revision that "
                        "reproduces, --good a newer one that does not",
            "variant": "normal, debug or coverage, instead of the bundle's"})
def bisect(c, bundle, tree=None, good=None, bad=None, runs=3, fixed_by=False, variant=None):
    """Find the commit that introduced (or, with --fixed-by, fixed) a bug, with a
    reproduction bundle as the test of each commit.

    Exit status 0 when a commit was found, 1 when the endpoints do not hold (good
    reproduces, bad does not), 2 on an error.
    """
    from pathlib import Path

    from harness.repro import bundle as bundles
    from harness.runs import bisect as bisect_run

    missing = [f"--{name}" for name, value in (("tree", tree), ("good", good), ("bad", bad))
               if not value]
    if missing:
        raise Exit(f"error: bisect needs {', '.join(missing)}", code=2)
    try:
        request = bisect_run.BisectRequest(
            bundles.load(bundle), _cache(c), Path(tree).expanduser().resolve(), good, bad,
            int(runs), fixed_by, variant)
        result = bisect_run.bisect(request)
    except HarnessError as exc:
        raise _fail(exc, code=2) from None
    print(result.table())
    print(result.headline())
    if result.found is None:
        raise Exit(code=1)


topo = Collection("topo")
topo.add_task(topo_check, "check")
topo.add_task(topo_up, "up")
topo.add_task(topo_down, "down")

ns = Collection(setup, build, boot, halt, shell, test, selftests, kunit, check, oracle,
                bench, repro, bisect, inspect, gdb, coverage, topo)
ns.add_task(exec_, "exec")
patches_tasks = Collection("patches")
patches_tasks.add_task(patches_check, "check")
patches_tasks.add_task(patches_export, "export")
ns.add_collection(patches_tasks)
