"""Bring a Topology up as network namespaces and take it down again, whatever happens.

`build(spec)` is a context manager. Each step registers its undo right after it succeeded;
on leaving the block (normally, on an exception or on Ctrl-C) the undos run in reverse
order, every one of them even if another fails, with SIGINT held off until they are done.
Deleting a namespace takes its interfaces, addresses, routes, qdiscs, nftables rules and
MPTCP endpoints with it; veth pairs are deleted explicitly as well because a pair spans two
namespaces.
"""

from __future__ import annotations

import errno
import secrets
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from pyroute2 import NetlinkError

from harness import PROJECT_PREFIX, interrupts, sysctl
from harness import netns as namespaces
from harness.mptcp.pm import PathManager
from harness.run import run
from harness.topology import impair as impairment
from harness.topology.live import NFT_TABLE, Topo
from harness.topology.loader import TopologyError
from harness.topology.model import Host, Link, Topology

IFA_F_NODAD = 0x02  # IPv6 addresses usable at once, without duplicate address detection
MIDDLEBOX_RULES = {
    "strip-mptcp": "tcp option mptcp exists counter reset tcp option mptcp",
    "drop-mptcp": "tcp option mptcp exists counter drop",
}


class ImpairmentUnsupported(TopologyError):
    pass


class TeardownError(TopologyError):
    pass


def namespace_name(run_id: str, host: str, prefix: str = PROJECT_PREFIX) -> str:
    return f"{prefix}-{run_id}-{host}"


@contextmanager
def build(spec: Topology, prefix: str = PROJECT_PREFIX) -> Iterator[Topo]:
    """Create the topology, yield the live Topo, and remove everything on the way out."""
    topo, undo = _bring_up(spec, prefix)
    try:
        yield topo
    except BaseException as failure:
        try:
            undo.unwind()
        except TeardownError as teardown:  # the block's own failure stays the one reported
            failure.add_note(str(teardown))
        raise
    undo.unwind()


def bring_up_detached(spec: Topology, prefix: str = PROJECT_PREFIX) -> Topo:
    """Create the topology and leave it up (for manual work): Topo.state() records it."""
    topo, _undo = _bring_up(spec, prefix)
    return topo


def _bring_up(spec: Topology, prefix: str) -> tuple[Topo, _UndoStack]:
    check_supported(spec)
    run_id = secrets.token_hex(3)
    names = {host: namespace_name(run_id, host, prefix) for host in spec.hosts}
    undo = _UndoStack()
    try:
        _create(spec, names, undo)
    except BaseException:
        undo.unwind()
        raise
    return Topo(spec, run_id, names), undo


def teardown_namespaces(names: list[str]) -> list[str]:
    """Delete exactly the namespaces named (those that still exist); return the deleted ones."""
    deleted = []
    for name in names:
        if namespaces.exists(name):
            namespaces.remove(name)
            deleted.append(name)
    return deleted


def check_supported(spec: Topology) -> None:
    """Refuse before building anything when an impairment needs netem and the kernel lacks it."""
    for i, link in enumerate(spec.links):
        if link.impair is None or not link.impair.needs_netem:
            continue
        if not impairment.kernel_has_netem():
            wanted = [name for name, value in (("delay", link.impair.delay_us),
                                               ("jitter", link.impair.jitter_us),
                                               ("loss", link.impair.loss_percent))
                      if value is not None]
            raise ImpairmentUnsupported(
                f"{spec.source}: links[{i}].impair: {', '.join(wanted)} needs the netem qdisc, "
                f"which the running kernel lacks (CONFIG_NET_SCH_NETEM); only a rate limit "
                f"(tbf) is possible here")


class _UndoStack:
    """Undo actions run last-in first-out; each runs even if an earlier one failed."""

    def __init__(self):
        self._stack = ExitStack()
        self.errors: list[str] = []

    def push(self, what: str, action: Callable[[], object]) -> None:
        def guarded() -> None:
            try:
                action()
            except Exception as exc:  # keep undoing; report every failure at the end
                self.errors.append(f"{what}: {exc}")

        self._stack.callback(guarded)

    def unwind(self) -> None:
        with interrupts.held():  # a second Ctrl-C must not leave half a topology
            self._stack.close()
        if self.errors:
            raise TeardownError("teardown incomplete: " + "; ".join(self.errors))


def _create(spec: Topology, names: dict[str, str], undo: _UndoStack) -> None:
    for host in spec.hosts.values():
        _create_host(host, names[host.name], undo)
    interface_counts = dict.fromkeys(spec.hosts, 0)
    for link in spec.links:
        _create_link(link, names, interface_counts, undo)
    for host in spec.hosts.values():
        _add_routes(host, names[host.name])
        if host.middlebox:
            _add_middlebox(host, names[host.name])
        _configure_mptcp(host, names[host.name])


def _create_host(host: Host, ns: str, undo: _UndoStack) -> None:
    namespaces.create(ns)
    undo.push(f"delete namespace {ns}", lambda: namespaces.remove(ns))
    with namespaces.rtnetlink(ns) as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
    settings = dict(host.sysctls)
    if host.forwarding:
        settings.update({"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1})
    for key, value in settings.items():
        sysctl.write(key, value, ns=ns)


def _create_link(link: Link, names: dict[str, str], counts: dict[str, int],
                 undo: _UndoStack) -> None:
    (a, b) = link.ends
    if_a, if_b = f"eth{counts[a.host]}", f"eth{counts[b.host]}"
    counts[a.host] += 1
    counts[b.host] += 1
    ns_a, ns_b = names[a.host], names[b.host]
    with namespaces.rtnetlink(ns_a) as ipr:
        ipr.link("add", ifname=if_a, kind="veth", peer={"ifname": if_b, "net_ns_fd": ns_b})
    undo.push(f"delete veth {ns_a}/{if_a}", lambda: _delete_link(ns_a, if_a))
    for end, ns, ifname in ((a, ns_a, if_a), (b, ns_b, if_b)):
        with namespaces.rtnetlink(ns) as ipr:
            index = ipr.link_lookup(ifname=ifname)[0]
            # up first, then addresses: an IPv6 address added to a down interface answers
            # neighbour solicitations only about a second after the interface comes up
            ipr.link("set", index=index, state="up")
            for address in end.addresses:
                family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
                ipr.addr("add", index=index, address=str(address.ip),
                         prefixlen=address.network.prefixlen, family=family,
                         flags=IFA_F_NODAD if address.version == 6 else 0)
            if link.impair is not None:
                impairment.apply(ipr, index, link.impair)


def _delete_link(ns: str, ifname: str) -> None:
    if not namespaces.exists(ns):
        return
    with namespaces.rtnetlink(ns) as ipr:
        indexes = ipr.link_lookup(ifname=ifname)
        if indexes:
            try:
                ipr.link("del", index=indexes[0])
            except NetlinkError as exc:
                if exc.code != errno.ENODEV:
                    raise


def _add_routes(host: Host, ns: str) -> None:
    with namespaces.rtnetlink(ns) as ipr:
        for route in host.routes:
            family = socket.AF_INET6 if route.version == 6 else socket.AF_INET
            dst = {} if route.to == "default" else {"dst": route.to}
            metric = {} if route.metric is None else {"priority": route.metric}
            try:
                ipr.route("add", gateway=route.via, family=family, **dst, **metric)
            except NetlinkError as exc:
                raise TopologyError(f"{host.name}: route to {route.to} via {route.via}: "
                                    f"{exc.args[-1] if exc.args else exc}") from None


def _add_middlebox(host: Host, ns: str) -> None:
    rules = (f"table inet {NFT_TABLE} {{\n"
             f"  chain forward {{ type filter hook forward priority 0;\n"
             f"    {MIDDLEBOX_RULES[host.middlebox]}\n  }}\n}}\n")
    run(["nft", "-f", "-"], ns=ns, input=rules)


def _configure_mptcp(host: Host, ns: str) -> None:
    spec = host.mptcp
    if spec.subflows is None and spec.add_addr_accepted is None and not spec.endpoints:
        return
    with PathManager(ns) as pm:
        if spec.subflows is not None or spec.add_addr_accepted is not None:
            pm.set_limits(subflows=spec.subflows, add_addr_accepted=spec.add_addr_accepted)
        for endpoint in spec.endpoints:
            pm.add_endpoint(endpoint.addr, id=endpoint.id, flags=endpoint.flags,
                            port=endpoint.port, ifname=endpoint.dev)
