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

from harness import PROJECT_PREFIX
from harness import netns as namespaces
from harness.capture import Capture
from harness.mptcp import mib as mib_counters
from harness.netns import created_here


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces and sysctls")


def require_mptcp() -> None:
    require_root()
    if not Path("/proc/sys/net/mptcp").is_dir():
        pytest.skip("the running kernel has no MPTCP (CONFIG_MPTCP)")


@pytest.fixture(autouse=True)
def no_leftover_namespaces(request):
    """Fail a test after which a namespace it created (in this process) still exists.

    Only namespaces made by this process count, so a concurrent run or a topology brought up
    by hand (`invoke topo.up`) is neither blamed nor touched.
    """
    before = created_here()
    yield
    leaked = created_here() - before
    if leaked:
        pytest.fail(f"namespaces left behind by {request.node.nodeid}: {sorted(leaked)}")


@pytest.fixture
def mptcp_kernel():
    """Skip unless running as root on a kernel with MPTCP."""
    require_mptcp()


@pytest.fixture
def netns(mptcp_kernel):
    """A fresh, empty network namespace (loopback up), removed after the test."""
    from pyroute2 import IPRoute

    name = f"{PROJECT_PREFIX}-{secrets.token_hex(3)}-test"
    namespaces.create(name)
    try:
        with IPRoute(netns=name) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        yield name
    finally:
        namespaces.remove(name)


@pytest.fixture
def topology(mptcp_kernel):
    """Factory: topology("two-paths") builds a shipped topology (or a loaded Topology).

    Every topology built in a test is torn down at the end of it, in reverse order. Keyword
    arguments are per-host sysctls, e.g. topology("two-paths", server={"net.mptcp.pm_type": 1}).
    """
    from harness.topology import build, load_named, with_sysctls

    with ExitStack() as stack:
        def make(spec, **host_sysctls):
            if isinstance(spec, str):
                spec = load_named(spec)
            if host_sysctls:
                spec = with_sysctls(spec, host_sysctls)
            return stack.enter_context(build(spec))

        yield make


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
        def start(ns, iface, bpf=("tcp",)):
            cap = Capture(ns, iface, bpf)
            stack.callback(cap.close)
            return stack.enter_context(cap)

        yield start


# ---- the kernel-health oracle, per test, when the tests run inside our VM ----
_kernel_log = None


def pytest_sessionstart(session):
    global _kernel_log
    from harness.vm import kmsg

    if kmsg.in_guest():
        _kernel_log = kmsg.KernelLog()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    if _kernel_log is not None:
        _kernel_log.new_lines()  # what came between tests is the host console's business
        _kernel_log.mark(f"test start {item.nodeid}")
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if _kernel_log is None or call.when != "teardown":
        return
    splats = _kernel_log.splats()
    _kernel_log.mark(f"test end {item.nodeid}")
    if splats:
        report = outcome.get_result()
        report.outcome = "failed"
        report.longrepr = (f"the kernel logged {len(splats)} splat(s) during this test:\n\n"
                           + "\n\n".join(s.text for s in splats))
