"""The builder against the real kernel: topologies come up, work, and leave nothing behind."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from harness import sysctl
from harness.netns import exists
from harness.paths import PROJECT_ROOT, TOPOLOGY_DIR
from harness.run import run
from harness.topology import (
    ImpairmentUnsupported,
    build,
    kernel_has_netem,
    load,
    load_named,
)

SHIPPED = sorted(p.stem for p in TOPOLOGY_DIR.glob("*.toml"))


@pytest.fixture(autouse=True)
def root(mptcp_kernel):
    """Every test here needs root and an MPTCP kernel (skips with the reason otherwise)."""


def needs_netem(spec) -> bool:
    return any(link.impair is not None and link.impair.needs_netem for link in spec.links)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_topology_comes_up_and_every_link_works(name):
    spec = load_named(name)
    if needs_netem(spec) and not kernel_has_netem():
        pytest.skip("the running kernel has no netem qdisc (CONFIG_NET_SCH_NETEM)")
    with build(spec) as topo:
        for link in spec.links:
            (a, b) = link.ends
            for address in b.addresses:
                run(["ping", "-c", "1", "-W", "2", str(address.ip)], ns=topo.ns(a.host))
        for host in spec.hosts.values():
            for key, value in host.sysctls.items():
                assert sysctl.read(key, topo.ns(host.name)) == str(value)
            if host.forwarding:
                assert sysctl.read("net.ipv4.ip_forward", topo.ns(host.name)) == "1"
            if host.middlebox:
                assert topo.middlebox_packets(host.name) == 0  # pings carry no MPTCP option
        namespaces = [topo.ns(h) for h in topo.hosts]
    assert not any(exists(ns) for ns in namespaces)


def test_rate_limit_is_a_tbf_with_the_asked_rate(tmp_path):
    path = tmp_path / "rate.toml"
    path.write_text(textwrap.dedent("""
        name = "rate"
        [hosts.a]
        [hosts.b]
        [[links]]
        ends = ["a:10.9.1.1/24", "b:10.9.1.2/24"]
        impair = { rate = "40mbit" }
    """))
    with build(load(path)) as topo:
        qdiscs = json.loads(run(["tc", "-j", "qdisc", "show", "dev", "eth0"],
                                ns=topo.ns("a")).stdout)
    (tbf,) = [q for q in qdiscs if q["kind"] == "tbf"]
    assert tbf["options"]["rate"] == 40_000_000 // 8  # bytes per second in tc's JSON


def test_pm_endpoints_and_limits_are_configured():
    from harness.mptcp.pm import PathManager

    with build(load_named("two-paths")) as topo, PathManager(topo.ns("client")) as pm:
        (endpoint,) = pm.endpoints()
        assert (endpoint.addr, endpoint.flags) == ("10.0.2.1", {"subflow"})
        assert pm.limits().subflows == 2


def test_an_exception_inside_the_block_removes_everything():
    with pytest.raises(RuntimeError), build(load_named("routed")) as topo:
        namespaces = [topo.ns(h) for h in topo.hosts]
        raise RuntimeError("test failure inside the topology")
    assert not any(exists(ns) for ns in namespaces)


def test_a_kernel_refusal_half_way_through_building_removes_what_was_made(tmp_path):
    path = tmp_path / "dup.toml"
    path.write_text(textwrap.dedent("""
        name = "dup"
        [hosts.client.mptcp]
        endpoints = [{ addr = "10.0.1.1", id = 5 }, { addr = "10.0.2.1", id = 5 }]
        [hosts.server]
        [[links]]
        ends = ["client:10.0.1.1/24", "server:10.0.1.2/24"]
        [[links]]
        ends = ["client:10.0.2.1/24", "server:10.0.2.2/24"]
    """))
    before = set(os.listdir("/run/netns"))
    with pytest.raises(Exception, match="mptcp_pm add endpoint 10.0.2.1"), build(load(path)):
        pytest.fail("the build should have failed on the duplicate endpoint id")
    assert set(os.listdir("/run/netns")) == before


@pytest.mark.skipif("kernel_has_netem()", reason="this kernel has netem")
def test_delay_without_netem_is_refused_before_building_anything():
    before = set(os.listdir("/run/netns"))
    with pytest.raises(ImpairmentUnsupported) as info, build(load_named("lossy-paths")):
        pass
    text = str(info.value)
    assert "links[0].impair" in text and "delay" in text and "CONFIG_NET_SCH_NETEM" in text
    assert set(os.listdir("/run/netns")) == before


CTRL_C_SCRIPT = """
import sys
from harness import traffic
from harness.topology import build, load_named
with build(load_named("two-paths")) as topo:
    print(" ".join(topo.ns(h) for h in topo.hosts), flush=True)
    traffic.transfer(topo.ns("client"), topo.ns("server"), topo.addresses("server", 4)[0],
                     seconds=60, subflows=2)
"""


def test_ctrl_c_in_the_middle_of_a_transfer_leaves_nothing_behind():
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C_SCRIPT], cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        namespaces = proc.stdout.readline().split()
        assert namespaces and all(exists(ns) for ns in namespaces)
        run(["sleep", "1"])  # let the transfer run on both subflows
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "KeyboardInterrupt" in stderr
    assert not any(exists(ns) for ns in namespaces), f"left behind: {namespaces}"


def test_topo_up_and_down_tasks(tmp_path):
    env = {**os.environ, "INVOKE_CACHE_DIR": str(tmp_path)}
    invoke = [sys.executable, "-m", "invoke"]
    up = subprocess.run([*invoke, "topo.up", "single-path"], cwd=PROJECT_ROOT, env=env,
                        capture_output=True, text=True, timeout=60)
    assert up.returncode == 0, up.stderr
    state = json.loads((tmp_path / "topologies-up.json").read_text())
    (namespaces,) = [s["namespaces"] for s in state]
    assert all(exists(ns) for ns in namespaces)
    assert f"ip netns exec {namespaces[0]} bash" in up.stdout
    down = subprocess.run([*invoke, "topo.down"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert not any(exists(ns) for ns in namespaces)


def test_a_failing_undo_is_reported_without_hiding_the_blocks_own_error(monkeypatch):
    from harness.topology import builder

    def broken_delete(ns, ifname):
        raise RuntimeError(f"injected failure deleting {ifname}")

    monkeypatch.setattr(builder, "_delete_link", broken_delete)
    with pytest.raises(ValueError) as info, build(load_named("single-path")) as topo:
        namespaces = [topo.ns(h) for h in topo.hosts]
        raise ValueError("the test's own failure")
    notes = " ".join(getattr(info.value, "__notes__", []))
    assert "teardown incomplete" in notes and "injected failure deleting eth0" in notes
    assert not any(exists(ns) for ns in namespaces)  # the other undos still ran
