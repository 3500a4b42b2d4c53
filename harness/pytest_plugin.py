"""pytest plugin (the `mptcp_lab` pytest11 entry point): fixtures for MPTCP behaviour tests.

Fixtures build real topologies of network namespaces, open path-manager netlink sockets and
event listeners in them, snapshot MIB counters, and capture packets; each undoes what it did
at the end of the test, whether the test passed, failed or was interrupted. After every test
that needed root, the plugin checks that no namespace of ours was left behind.
"""

from __future__ import annotations

import os
import secrets
from contextlib import ExitStack
from pathlib import Path

import pytest

from harness import PROJECT_PREFIX, evidence, interrupts
from harness import netns as namespaces
from harness.capture import SNAPLEN, Capture
from harness.coverage import guest as coverage_guest
from harness.mptcp import mib as mib_counters
from harness.netns import created_here
from harness.vm import oracle, settle
from harness.vm.kmsg import BUILD_RECORD_ENV


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces and sysctls")


def require_mptcp() -> None:
    require_root()
    if not Path("/proc/sys/net/mptcp").is_dir():
        pytest.skip("the running kernel has no MPTCP (CONFIG_MPTCP)")


NAMESPACE_FIXTURES = {"netns", "topology", "mptcp_kernel"}  # what can make namespaces


@pytest.fixture(autouse=True)
def no_leftover_namespaces(request):
    """Fail a test after which a namespace it created (in this process) still exists.

    Only tests that use our fixtures are checked (the plugin loads in every pytest run of
    the environment), and only namespaces made by this process count, so a concurrent run
    or a topology brought up by hand (`invoke topo.up`) is neither blamed nor touched.
    """
    if not NAMESPACE_FIXTURES & set(request.fixturenames):
        yield
        return
    before = created_here()
    yield
    leaked = created_here() - before
    if leaked:
        pytest.fail(f"namespaces left behind by {request.node.nodeid}: {sorted(leaked)}")


# ---- tests of our patch series: what the kernel was built with decides, not a probe ----
EXPECTED_SKIP = pytest.StashKey[str]()


def booted_build_record():
    """The build record of the kernel the VM booted (None: the host gave none)."""
    from harness.kernel.record import BuildRecord

    path = os.environ.get(BUILD_RECORD_ENV)
    return BuildRecord.load(Path(path).parent) if path else None


def series_verdict(record, slug: str) -> tuple[str, str]:
    """("run" | "skip" | "fail", why) for a test of our series' patch `slug` in the VM."""
    if record is None:
        return "fail", (f"no build record for the booted kernel ({BUILD_RECORD_ENV} unset or "
                        f"stale): cannot tell whether it has the patch '{slug}'")
    if record.has_patch(slug):
        return "run", ""
    if not record.patches:
        return "skip", f"the kernel was built without a patch series, so without '{slug}'"
    names = ", ".join(name for name, _sha in record.patches)
    return "fail", (f"the kernel was built with a series that lacks the patch '{slug}' "
                    f"(built with: {names})")


@pytest.fixture
def built_with(request, mptcp_kernel):
    """built_with(slug, host_probe): this test needs our series' patch `slug`.

    In the VM the booted kernel's build record decides: built with the patch, the test runs
    (and fails if the patch is broken); built with no series at all, it skips; built with a
    series that lacks the patch, it fails. On the host, whose kernel has no record,
    host_probe() says what the kernel lacks (the test skips with that) or None.
    """
    from harness.vm import kmsg

    def require(slug: str, host_probe) -> None:
        if not kmsg.in_guest():
            missing = host_probe()
            if missing:
                pytest.skip(f"host kernel without '{slug}': {missing}")
            return
        verdict, why = series_verdict(booted_build_record(), slug)
        if verdict == "fail":
            pytest.fail(why, pytrace=False)
        if verdict == "skip":
            request.node.stash[EXPECTED_SKIP] = why
            pytest.skip(why)

    return require


def debug_info_verdict(record) -> tuple[str, str]:
    """("run" | "skip" | "fail", why) for a test that reads the kernel with drgn, in the VM:
    the booted kernel's build config decides, as for the series' tests."""
    from harness.mptcp.kernel_view import config_lacks, lacks_why

    if record is None:
        return "fail", (f"no build record for the booted kernel ({BUILD_RECORD_ENV} unset or "
                        f"stale): cannot tell whether it has debug info")
    missing = config_lacks(record.vmlinux)
    return ("skip", lacks_why(missing)) if missing else ("run", "")


@pytest.fixture
def kernel_view(request, mptcp_kernel):
    """The running kernel as a drgn Program (harness.mptcp.kernel_view), to read the msk.

    In the VM, the booted kernel's build decides: built with debug info and /proc/kcore (the
    debug variant), the test runs, and fails if drgn cannot read the kernel; built without,
    it skips as expected. On the host, whose kernel has no build of ours, it skips.
    """
    from harness.mptcp import kernel_view as view
    from harness.vm import kmsg

    if not kmsg.in_guest():
        pytest.skip("reads the kernel with drgn and our build's vmlinux: runs in our VM")
    record = booted_build_record()
    verdict, why = debug_info_verdict(record)
    if verdict == "fail":
        pytest.fail(why, pytrace=False)
    if verdict == "skip":
        request.node.stash[EXPECTED_SKIP] = why
        pytest.skip(why)
    try:
        return view.program(record.vmlinux)
    except view.KernelViewError as err:
        pytest.fail(str(err), pytrace=False)


@pytest.fixture
def mptcp_kernel():
    """Skip unless running as root on a kernel with MPTCP."""
    require_mptcp()


@pytest.fixture
def netem(mptcp_kernel):
    """Skip unless the running kernel has the netem qdisc, for link delays and loss (the
    host's may not; ours has it, and in our VM a skip is a failure)."""
    from harness.topology import kernel_has_netem

    if not kernel_has_netem():
        pytest.skip("the running kernel has no netem qdisc (CONFIG_NET_SCH_NETEM) for link "
                    "delays")


@pytest.fixture
def netns(mptcp_kernel):
    """A fresh, empty network namespace (loopback up), removed after the test."""
    name = f"{PROJECT_PREFIX}-{secrets.token_hex(3)}-test"
    namespaces.create(name)
    try:
        with namespaces.rtnetlink(name) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        yield name
    finally:
        namespaces.remove(name)


@pytest.fixture
def topology(request, mptcp_kernel):
    """Factory: topology("two-paths") builds a shipped topology (or a loaded Topology).

    Every topology built in a test is torn down at the end of it, in reverse order. Keyword
    arguments are per-host sysctls, e.g. topology("two-paths", server={"net.mptcp.pm_type": 1}).
    When the run keeps evidence, the topology's links are captured and its MIBs recorded.
    """
    from harness.topology import build, load_named, with_sysctls

    with ExitStack() as stack:
        def make(spec, **host_sysctls):
            if isinstance(spec, str):
                spec = load_named(spec)
            if host_sysctls:
                spec = with_sysctls(spec, host_sysctls)
            topo = stack.enter_context(build(spec))
            kept = evidence_of(request.node)
            if kept is not None:
                kept.watch_topology(stack, topo, lambda: failed_so_far(request.node))
            return topo

        yield make


LINK_PACES = pytest.StashKey[dict]()  # in the config stash: (topology, rate, paced_app) -> pace


@pytest.fixture
def paced_links(request, mptcp_kernel):
    """paced_links(spec, paced_app=False, transfer=None) -> (spec, scale): spec (a name or a
    Topology) with its link rates scaled to what this kernel fills in it (harness.link_pace),
    for a test whose premise is that the links set the pace; paced_app for a test whose
    application is paced (the measure's sender is paced too). scale is the links'; given
    transfer (the test's transfer as written, in bytes) it is the scale of the test's byte
    counts, which keeps the transfer no smaller than link_pace.LEAST_SCALED_BYTES. Measured
    once per session, topology, total rate and sender, captured as the test's links are; a
    scale other than 1 is printed, in the test's JUnit properties and in the run's summary.
    A failed measure fails every test that needs it."""
    from harness import link_pace
    from harness.topology import load_named, with_rates_scaled

    paces = request.config.stash.setdefault(LINK_PACES, {})

    def scaled(spec, paced_app=False, transfer=None):
        if isinstance(spec, str):
            spec = load_named(spec)
        key = (spec.name, link_pace.total_rate_bit(spec), paced_app)
        if key not in paces:
            paces[key] = measured_or_why(spec, paced_app)
        pace = paces[key]
        if isinstance(pace, str):
            pytest.fail(pace, pytrace=False)
        said(pace.describe())
        if transfer is None:
            return with_rates_scaled(spec, pace.scale), pace.scale
        of_bytes = link_pace.bytes_scale(pace.scale, transfer)
        if of_bytes != pace.scale:
            said(f"bytes scaled by {of_bytes:.3f}: a transfer of {transfer} B as written "
                 f"becomes {int(transfer * of_bytes)} B, no less than "
                 f"{link_pace.LEAST_SCALED_BYTES}")
        return with_rates_scaled(spec, pace.scale), of_bytes

    def said(line):
        request.node.user_properties.append(("link_pace", line))
        print(f"\n{line}")

    def measured_or_why(spec, paced_app):
        try:
            return link_pace.measure(spec, captured=evidence_of(request.node) is not None,
                                     paced_app=paced_app)
        except link_pace.LinkPaceError as err:
            return str(err)  # kept: the next test of that topology fails at once with it

    return scaled


def pytest_terminal_summary(terminalreporter, config):
    """The link scales of the run (see paced_links), when a kernel needed one."""
    for pace in config.stash.get(LINK_PACES, {}).values():
        if not isinstance(pace, str) and pace.scale != 1.0:
            terminalreporter.write_line(f"mptcp-lab: {pace.describe()}")


@pytest.fixture
def pm(mptcp_kernel):
    """Factory: pm(ns) is a PathManager (generic netlink) bound to namespace ns."""
    from harness.mptcp.pm import PathManager

    with ExitStack() as stack:
        yield lambda ns=None: stack.enter_context(PathManager(ns))


@pytest.fixture
def pm_events(mptcp_kernel):
    """Factory: pm_events(ns) subscribes to the MPTCP PM events of namespace ns."""
    from harness.mptcp.events import EventListener

    with ExitStack() as stack:
        yield lambda ns=None: stack.enter_context(EventListener(ns))


@pytest.fixture
def mib():
    """mib(ns) -> MibSnapshot of every counter in ns; `before.delta(after)` gives what moved."""
    return mib_counters.snapshot


@pytest.fixture
def capture(mptcp_kernel):
    """Factory: capture(ns, iface) starts tcpdump there; stopped and removed after the test."""
    with ExitStack() as stack:
        def start(ns, iface, bpf=("tcp",), snaplen=SNAPLEN):
            cap = Capture(ns, iface, bpf, snaplen=snaplen)
            stack.callback(cap.close)
            return stack.enter_context(cap)

        yield start


# ---- evidence: what a failed test leaves in the run's evidence directory ----
EVIDENCE = pytest.StashKey[evidence.TestEvidence]()
REPORTS = pytest.StashKey[list]()


def evidence_of(item) -> evidence.TestEvidence | None:
    """The test's evidence directory, made on first use; None when the run keeps none."""
    if EVIDENCE not in item.stash:
        root = evidence.run_directory()
        if root is None:
            return None
        name = evidence.directory_name(*evidence.junit_names(item.nodeid))
        item.stash[EVIDENCE] = evidence.TestEvidence(root / name)
    return item.stash[EVIDENCE]


def failed_so_far(item) -> bool:
    return any(report.failed for report in item.stash.get(REPORTS, []))


def keep_evidence(item, console: list[str]) -> None:
    """At the end of a test: write its output (and console) and keep the directory if the
    test failed or the run keeps everything; remove it otherwise."""
    kept = evidence_of(item)
    if kept is None:
        return
    kept.add("output.txt", output_text(item.stash.get(REPORTS, [])))
    if console:
        kept.add("console.txt", "\n".join(console) + "\n")
    kept.finish(keep=failed_so_far(item) or evidence.keep_passing())


def output_text(reports: list) -> str:
    """A test as text: each phase's outcome and failure, then what it printed (the last
    report's sections hold those of every phase)."""
    parts = []
    for report in reports:
        parts.append(f"==== {report.when}: {report.outcome}\n")
        if report.longreprtext:
            parts.append(report.longreprtext + "\n")
    if reports:
        parts += [f"---- {title}\n{content}\n" for title, content in reports[-1].sections]
    return "".join(parts)


# ---- collection looks only where it was pointed ----
@pytest.hookimpl(tryfirst=True)
def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """An entry outside every path named on the command line is not looked at. To collect
    tests/mptcp/test_x.py, pytest lists the root, tests/ and tests/mptcp/, and checks every
    entry of each (is it a virtualenv, does its name match) only to drop all but the one:
    in our VM, over 9p under emulation, those few hundred stat calls cost about half a
    second a run. Without paths on the command line (testpaths) or with a name that is
    not a path (--pyargs), collection is left as pytest does it."""
    given = _paths_given(config)
    if not given:
        return None
    inside = any(path == collection_path or path in collection_path.parents for path in given)
    return None if inside else True


PATHS_GIVEN = pytest.StashKey[list]()


def _paths_given(config) -> list[Path]:
    if PATHS_GIVEN not in config.stash:
        paths = []
        if config.args_source == pytest.Config.ArgsSource.ARGS:
            invoked = config.invocation_params.dir
            paths = [Path(os.path.abspath(invoked / arg.split("::", 1)[0]))
                     for arg in config.args]
        config.stash[PATHS_GIVEN] = paths if all(path.exists() for path in paths) else []
    return config.stash[PATHS_GIVEN]


# ---- the kernel-health oracle, per test, when the tests run inside our VM ----
_kernel_log = None


@pytest.hookimpl(trylast=True)  # after pytest's own unraisable-exception hook, to wrap it
def pytest_configure(config):
    interrupts.stop_on_signals()  # SIGTERM tears the fixtures down as Ctrl-C does


def pytest_sessionstart(session):
    global _kernel_log
    from harness.vm import kmsg

    if kmsg.in_guest():
        _kernel_log = kmsg.KernelLog()


def pytest_sessionfinish(session):
    """In our VM: when the last test's settle step was the last thing done, say so to the
    command's own settle step, which then does not wait for the netns cleanup and scan for
    leaks a second time (see guest-settle)."""
    settled_file = os.environ.get(settle.SETTLED_ENV)
    if _kernel_log is not None and _settled_after_last_test and settled_file:
        Path(settled_file).touch()


NAMESPACES_BEFORE = pytest.StashKey[list]()
_settled_after_last_test = False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    global _settled_after_last_test
    _settled_after_last_test = False
    if _kernel_log is not None:
        _kernel_log.new_lines()  # what came between tests is the host console's business
        _kernel_log.mark(f"test start {item.nodeid}")
        item.stash[NAMESPACES_BEFORE] = settle.named_namespaces()
        if coverage_guest.run_directory() is not None:
            coverage_guest.reset()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    console = judge_by_kernel(item, call, report) if _kernel_log is not None else []
    item.stash.setdefault(REPORTS, []).append(report)
    if call.when == "teardown":
        keep_evidence(item, console)
        if _kernel_log is not None:
            collect_coverage(item)


def collect_coverage(item) -> None:
    """With --coverage: the counters of this test (and its settle step) into its part."""
    directory = coverage_guest.run_directory()
    if directory is not None:  # the host set it only with the build record of a gcov kernel
        part = evidence.directory_name(*evidence.junit_names(item.nodeid))
        coverage_guest.collect(directory / part, Path(os.environ[BUILD_RECORD_ENV]).parent)


def judge_by_kernel(item, call, report) -> list[str]:
    """In our VM: an unexpected skip fails; at teardown, settle, and a splat or a leak fails
    the test. Returns the kernel log of the test (at teardown; empty before)."""
    global _settled_after_last_test
    if report.skipped and not hasattr(report, "wasxfail") and EXPECTED_SKIP not in item.stash:
        report.outcome = "failed"  # in our VM every feature a test needs is there
        report.longrepr = f"unexpected skip in the VM: {skip_reason(report)}"
    if call.when != "teardown":
        return []
    settle_status, settle_report = settle.settle_here(item.stash.get(NAMESPACES_BEFORE, []))
    leaks = settle.splats(settle_status, settle_report)
    _settled_after_last_test = settle_status == 0  # it finished
    console = _kernel_log.new_lines()
    splats = oracle.find_splats(console) + leaks
    _kernel_log.mark(f"test end {item.nodeid}")
    if settle_report:
        report.sections.append(("settle", settle_report))
    if splats:
        report.outcome = "failed"
        report.longrepr = (f"the kernel logged {len(splats)} splat(s) during this test or "
                           f"its settle step:\n\n" + "\n\n".join(s.text for s in splats))
    return console


def skip_reason(report) -> str:
    longrepr = report.longrepr
    return longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
