"""The path manager's netlink interface against the kernel: endpoints, limits, errors, events."""

import errno
import json

import pytest

from harness import traffic
from harness.mptcp.netlink import NetlinkError
from harness.run import run


@pytest.fixture
def ns_with_addresses(netns):
    run(["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"], ns=netns)
    run(["ip", "addr", "add", "10.9.0.1/24", "dev", "eth0"], ns=netns)
    run(["ip", "addr", "add", "fd00:9::1/64", "dev", "eth0", "nodad"], ns=netns)
    return netns


def iproute2_endpoints(ns):
    return json.loads(run(["ip", "-j", "mptcp", "endpoint", "show"], ns=ns).stdout or "[]")


def test_endpoints_round_trip_and_agree_with_iproute2(ns_with_addresses, pm):
    ns = ns_with_addresses
    manager = pm(ns)
    first = manager.add_endpoint("10.9.0.1", flags={"subflow"}, ifname="eth0")
    second = manager.add_endpoint("fd00:9::1", id=9, flags={"signal", "backup"})
    assert second.id == 9 and first.id != 9
    assert manager.get_endpoint(first.id) == first
    assert {e.addr: e.flags for e in manager.endpoints()} == {
        "10.9.0.1": {"subflow"}, "fd00:9::1": {"signal", "backup"}}
    theirs = {e["address"]: e for e in iproute2_endpoints(ns)}
    assert theirs["10.9.0.1"]["id"] == first.id and theirs["10.9.0.1"].get("subflow")
    assert theirs["10.9.0.1"].get("dev") == "eth0"
    assert theirs["fd00:9::1"].get("signal") and theirs["fd00:9::1"].get("backup")
    manager.del_endpoint(first.id)
    assert [e.id for e in manager.endpoints()] == [9]
    manager.flush_endpoints()
    assert manager.endpoints() == [] and iproute2_endpoints(ns) == []


def test_backup_flag_toggles(ns_with_addresses, pm):
    manager = pm(ns_with_addresses)
    endpoint = manager.add_endpoint("10.9.0.1", flags={"subflow"})
    manager.set_endpoint_flags(endpoint.id, {"backup"})
    assert manager.get_endpoint(endpoint.id).flags == {"subflow", "backup"}
    manager.set_endpoint_flags(endpoint.id, set())
    assert manager.get_endpoint(endpoint.id).flags == {"subflow"}


def test_limits_set_and_read_back(netns, pm):
    manager = pm(netns)
    manager.set_limits(subflows=5, add_addr_accepted=3)
    limits = manager.limits()
    assert (limits.subflows, limits.add_addr_accepted) == (5, 3)
    words = run(["ip", "mptcp", "limits", "show"], ns=netns).stdout.split()  # no JSON in 6.1
    theirs = dict(zip(words[::2], map(int, words[1::2]), strict=True))
    assert (theirs["subflows"], theirs["add_addr_accepted"]) == (5, 3)


@pytest.mark.parametrize("action, expected", [
    (lambda m: m.add_endpoint("10.9.0.1"), errno.EEXIST),
    (lambda m: m.del_endpoint(77), errno.EINVAL),
    (lambda m: m.get_endpoint(77), errno.EINVAL),
    (lambda m: m.set_limits(subflows=9), errno.EINVAL),  # MPTCP_PM_ADDR_MAX is 8
    (lambda m: m.remove(0x1234, 1), errno.EINVAL),  # no connection with that token
], ids=["duplicate", "delete-unknown", "get-unknown", "limit-too-big", "bad-token"])
def test_kernel_errors_surface_with_errno_and_message(ns_with_addresses, pm, action, expected):
    manager = pm(ns_with_addresses)
    manager.add_endpoint("10.9.0.1")
    with pytest.raises(NetlinkError) as info:
        action(manager)
    assert info.value.errno == expected
    assert info.value.extack, "the kernel's extack message is missing"


def test_events_follow_a_connection(netns, pm_events):
    events = pm_events(netns)
    with traffic.session(netns, netns, "127.0.0.1") as live:
        sink, sport = live.sink, live.sock.getsockname()[1]
        created = events.wait_for("created", sport=sport)
        server = events.wait_for("created", server_side=1)
        assert (created.dport, server.sport, server.dport) == (sink.port, sink.port, sport)
        events.wait_for("established", token=server.token)  # at the third ACK
        live.sender.send(nbytes=100_000)  # a client is fully established once data is acked
        established = events.wait_for("established", token=created.token)
        assert established.saddr == "127.0.0.1"
        live.sender.finish()
    events.wait_for("closed", token=created.token)
    events.wait_for("closed", token=server.token)
    listener = events.wait_for("listener_created", sport=sink.port)
    assert listener.saddr == "127.0.0.1"
