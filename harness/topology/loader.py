"""Load a topology TOML file into the model, validating every key.

Every problem raises TopologyError with one line naming the file and the dotted key, e.g.
`topologies/x.toml: links[1].ends[0]: unknown host 'clinet' (hosts: client, server)`.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path

from harness.errors import HarnessError
from harness.paths import TOPOLOGY_DIR, not_a_checkout
from harness.topology.model import (
    ENDPOINT_FLAGS,
    MIDDLEBOXES,
    EndpointSpec,
    Host,
    Impairment,
    Link,
    LinkEnd,
    MptcpSpec,
    Route,
    Topology,
)
from harness.validate import Where, array, table_of, typed

MAX_PM_LIMIT = 8  # MPTCP_PM_ADDR_MAX in net/mptcp/pm_netlink.c (6.12)
HOST_NAME = re.compile(r"^[a-z][a-z0-9]{0,9}$")  # short: it ends namespace names
SYSCTL_KEY = re.compile(r"^net(\.[A-Za-z0-9_\-]+)+$")
TIME = re.compile(r"^(\d+(?:\.\d+)?)(us|ms|s)$")
RATE = re.compile(r"^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit)$")
LOSS = re.compile(r"^(\d+(?:\.\d+)?)%$")
TIME_UNITS_US = {"us": 1, "ms": 1_000, "s": 1_000_000}
RATE_UNITS = {"bit": 1, "kbit": 1_000, "mbit": 1_000_000, "gbit": 1_000_000_000}


class TopologyError(HarnessError):
    pass


def parse_time_us(value, where: Where) -> int:
    match = TIME.match(typed(value, where, str, 'a time such as "10ms"'))
    if not match:
        raise where.error(f'bad time {value!r}: use a number with us, ms or s, e.g. "10ms"')
    return round(float(match[1]) * TIME_UNITS_US[match[2]])


def parse_rate_bit(value, where: Where) -> int:
    match = RATE.match(typed(value, where, str, 'a rate such as "50mbit"'))
    if not match:
        raise where.error(f'bad rate {value!r}: use bit, kbit, mbit or gbit, e.g. "50mbit"')
    bits = round(float(match[1]) * RATE_UNITS[match[2]])
    if bits <= 0:
        raise where.error(f"rate must be positive, got {value!r}")
    return bits


def parse_loss(value, where: Where) -> float:
    match = LOSS.match(typed(value, where, str, 'a percentage such as "0.5%"'))
    if not match or not 0 <= float(match[1]) <= 100:
        raise where.error(f'bad loss {value!r}: use a percentage from 0% to 100%, e.g. "0.5%"')
    return float(match[1])


def parse_impairment(value, where: Where) -> Impairment:
    table = table_of(value, where, {"delay", "jitter", "loss", "rate"})
    if "jitter" in table and "delay" not in table:
        raise (where / "jitter").error("jitter needs a delay")
    return Impairment(
        delay_us=parse_time_us(table["delay"], where / "delay") if "delay" in table else None,
        jitter_us=parse_time_us(table["jitter"], where / "jitter") if "jitter" in table else None,
        loss_percent=parse_loss(table["loss"], where / "loss") if "loss" in table else None,
        rate_bit=parse_rate_bit(table["rate"], where / "rate") if "rate" in table else None,
    )


def parse_end(value, where: Where, hosts: dict) -> LinkEnd:
    text = typed(value, where, str, 'a string "host:address/prefix[,address/prefix]"')
    host, sep, addresses = text.partition(":")
    if not sep or not addresses:
        raise where.error(f'expected "host:address/prefix", got {text!r}')
    if host not in hosts:
        raise where.error(f"unknown host {host!r} (hosts: {', '.join(hosts)})")
    parsed = []
    for item in addresses.split(","):
        if "/" not in item:
            raise where.error(f"address {item!r} needs a prefix length, e.g. {item}/24")
        try:
            parsed.append(ipaddress.ip_interface(item.strip()))
        except ValueError as exc:
            raise where.error(f"bad address or prefix {item!r}: {exc}") from None
    return LinkEnd(host, tuple(parsed))


def parse_link(value, where: Where, hosts: dict) -> Link:
    table = table_of(value, where, {"ends", "impair"}, {"ends"})
    ends = array(table["ends"], where / "ends")
    if len(ends) != 2:
        raise (where / "ends").error(f"a link has exactly 2 ends, got {len(ends)}")
    parsed = tuple(parse_end(e, where / "ends" / i, hosts) for i, e in enumerate(ends))
    if parsed[0].host == parsed[1].host:
        raise (where / "ends").error(f"both ends are on host {parsed[0].host!r}")
    impair = parse_impairment(table["impair"], where / "impair") if "impair" in table else None
    return Link((parsed[0], parsed[1]), impair)


def parse_route(value, where: Where) -> Route:
    table = table_of(value, where, {"to", "via", "metric"}, {"to", "via"})
    metric = table.get("metric")
    if metric is not None and not 0 <= typed(metric, where / "metric", int, "an integer") \
            < 2**32:
        raise (where / "metric").error(f"metric must be 0..4294967295, got {metric}")
    to = typed(table["to"], where / "to", str, 'a network or "default"')
    via = typed(table["via"], where / "via", str, "an address")
    try:
        gateway = ipaddress.ip_address(via)
    except ValueError:
        raise (where / "via").error(f"bad gateway address {via!r}") from None
    if to != "default":
        try:
            network = ipaddress.ip_network(to)
        except ValueError as exc:
            raise (where / "to").error(f"bad network {to!r}: {exc}") from None
        if network.version != gateway.version:
            raise where.error(f"route to {to} via {via} mixes IPv4 and IPv6")
    return Route(to, str(gateway), metric)


def parse_endpoint(value, where: Where) -> EndpointSpec:
    table = table_of(value, where, {"addr", "flags", "id", "port", "dev"}, {"addr"})
    addr = typed(table["addr"], where / "addr", str, "an address")
    try:
        addr = str(ipaddress.ip_address(addr))
    except ValueError:
        raise (where / "addr").error(f"bad address {addr!r}") from None
    flags = tuple(array(table.get("flags", []), where / "flags"))
    for i, flag in enumerate(flags):
        if flag not in ENDPOINT_FLAGS:
            raise (where / "flags" / i).error(
                f"unknown endpoint flag {flag!r} (known: {', '.join(ENDPOINT_FLAGS)})")
    endpoint_id = table.get("id")
    if endpoint_id is not None and not 1 <= typed(endpoint_id, where / "id", int, "an integer") \
            <= 255:
        raise (where / "id").error(f"endpoint id must be 1..255, got {endpoint_id}")
    port = table.get("port")
    if port is not None and not 1 <= typed(port, where / "port", int, "an integer") <= 65535:
        raise (where / "port").error(f"port must be 1..65535, got {port}")
    dev = table.get("dev")
    if dev is not None:
        typed(dev, where / "dev", str, "an interface name")
    return EndpointSpec(addr, flags, endpoint_id, port, dev)


def parse_mptcp(value, where: Where) -> MptcpSpec:
    table = table_of(value, where, {"limits", "endpoints"})
    limits = table_of(table.get("limits", {}), where / "limits", {"subflows", "add_addr_accepted"})
    for key, limit in limits.items():
        if not 0 <= typed(limit, where / "limits" / key, int, "an integer") <= MAX_PM_LIMIT:
            raise (where / "limits" / key).error(
                f"must be 0..{MAX_PM_LIMIT} (the kernel's MPTCP_PM_ADDR_MAX), got {limit}")
    endpoints = tuple(parse_endpoint(e, where / "endpoints" / i)
                      for i, e in enumerate(array(table.get("endpoints", []), where / "endpoints")))
    return MptcpSpec(limits.get("subflows"), limits.get("add_addr_accepted"), endpoints)


def parse_host(name: str, value, where: Where) -> Host:
    if not HOST_NAME.match(name):
        raise where.error("host names are 1-10 lowercase letters or digits, starting with a letter")
    table = table_of(value, where, {"sysctls", "forwarding", "middlebox", "routes", "mptcp"})
    sysctls = table_of(table.get("sysctls", {}), where / "sysctls", None)
    for key, setting in sysctls.items():
        if not SYSCTL_KEY.match(key):
            raise (where / "sysctls" / key).error("sysctl keys are dotted names under net.")
        typed(setting, where / "sysctls" / key, (int, str), "an integer or a string")
    forwarding = typed(table.get("forwarding", False), where / "forwarding", bool, "true/false")
    middlebox = table.get("middlebox")
    if middlebox is not None and middlebox not in MIDDLEBOXES:
        raise (where / "middlebox").error(
            f"unknown middlebox {middlebox!r} (known: {', '.join(MIDDLEBOXES)})")
    if middlebox is not None and not forwarding:
        raise (where / "middlebox").error("a middlebox acts on forwarded packets: "
                                          "set forwarding = true on this host")
    routes = tuple(parse_route(r, where / "routes" / i)
                   for i, r in enumerate(array(table.get("routes", []), where / "routes")))
    mptcp = parse_mptcp(table["mptcp"], where / "mptcp") if "mptcp" in table else MptcpSpec()
    return Host(name, dict(sysctls), forwarding, middlebox, routes, mptcp)


def check_consistency(topo: Topology, where: Where) -> None:
    """Cross-checks: duplicate addresses, endpoints on the host, gateways reachable."""
    seen: dict = {}
    for i, link in enumerate(topo.links):
        for j, end in enumerate(link.ends):
            for address in end.addresses:
                if address.ip in seen:
                    raise (where / "links" / i / "ends" / j).error(
                        f"address {address.ip} is also used at {seen[address.ip]}")
                seen[address.ip] = f"links[{i}].ends[{j}]"
    for name, host in topo.hosts.items():
        own = topo.addresses_of(name)
        for i, endpoint in enumerate(host.mptcp.endpoints):
            if endpoint.addr not in {str(a.ip) for a in own}:
                raise (where / "hosts" / name / "mptcp" / "endpoints" / i / "addr").error(
                    f"{endpoint.addr} is not an address of host {name!r}")
        for i, route in enumerate(host.routes):
            if not any(ipaddress.ip_address(route.via) in a.network for a in own):
                raise (where / "hosts" / name / "routes" / i / "via").error(
                    f"gateway {route.via} is on no subnet of host {name!r}")


def parse(data: dict, path: Path) -> Topology:
    where = Where(path, error=TopologyError)
    table = table_of(data, where, {"name", "description", "hosts", "links"}, {"name", "hosts"})
    name = typed(table["name"], where / "name", str, "a string")
    description = typed(table.get("description", ""), where / "description", str, "a string")
    host_tables = table_of(table["hosts"], where / "hosts", None)
    if not host_tables:
        raise (where / "hosts").error("a topology needs at least one host")
    hosts = {n: parse_host(n, v, where / "hosts" / n) for n, v in host_tables.items()}
    links = tuple(parse_link(v, where / "links" / i, hosts)
                  for i, v in enumerate(array(table.get("links", []), where / "links")))
    topo = Topology(name, hosts, links, description, path)
    check_consistency(topo, where)
    return topo


def load(path: str | Path) -> Topology:
    """Read and validate one topology file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise TopologyError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TopologyError(f"{path}: TOML syntax error: {exc}") from None
    return parse(data, path)


def load_named(name: str, directory: Path = TOPOLOGY_DIR) -> Topology:
    """A shipped topology by name (topologies/<name>.toml), or a path to a TOML file."""
    candidate = Path(name)
    if candidate.suffix == ".toml" or candidate.exists():
        return load(candidate)
    path = directory / f"{name}.toml"
    if not directory.is_dir():
        raise TopologyError(f"no topology directory {directory} for {name!r}: "
                            f"{not_a_checkout() or 'it was removed'}")
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.toml")))
        raise TopologyError(f"{path}: no topology named {name!r} (known: {known})")
    return load(path)
