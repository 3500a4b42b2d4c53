"""Topologies as plain data: hosts (network namespaces), veth links, routes, MPTCP settings."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from pathlib import Path

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

ENDPOINT_FLAGS = ("signal", "subflow", "backup", "fullmesh")
MIDDLEBOXES = ("strip-mptcp", "drop-mptcp")


@dataclass(frozen=True)
class Impairment:
    """What one link does to packets, in each direction (applied on both ends' egress)."""

    delay_us: int | None = None
    jitter_us: int | None = None
    loss_percent: float | None = None
    rate_bit: int | None = None

    @property
    def needs_netem(self) -> bool:
        return any(v is not None for v in (self.delay_us, self.jitter_us, self.loss_percent))


@dataclass(frozen=True)
class LinkEnd:
    host: str
    addresses: tuple[Interface, ...]


@dataclass(frozen=True)
class Link:
    ends: tuple[LinkEnd, LinkEnd]
    impair: Impairment | None = None


@dataclass(frozen=True)
class Route:
    to: str  # "default" or a network such as 10.0.2.0/24 or fd00:2::/64
    via: str
    metric: int | None = None  # a second route to the same network needs a higher one

    @property
    def version(self) -> int:
        return ipaddress.ip_address(self.via).version


@dataclass(frozen=True)
class EndpointSpec:
    addr: str
    flags: tuple[str, ...] = ()
    id: int | None = None
    port: int | None = None
    dev: str | None = None


@dataclass(frozen=True)
class MptcpSpec:
    subflows: int | None = None
    add_addr_accepted: int | None = None
    endpoints: tuple[EndpointSpec, ...] = ()


@dataclass(frozen=True)
class Host:
    name: str
    sysctls: dict[str, int | str] = field(default_factory=dict)
    forwarding: bool = False
    middlebox: str | None = None
    routes: tuple[Route, ...] = ()
    mptcp: MptcpSpec = MptcpSpec()


@dataclass(frozen=True)
class Topology:
    name: str
    hosts: dict[str, Host]
    links: tuple[Link, ...]
    description: str = ""
    source: Path | None = None

    def links_of(self, host: str) -> list[tuple[Link, LinkEnd]]:
        """The links of a host in file order with its own end: link i is its interface eth<i>."""
        return [(link, end) for link in self.links for end in link.ends if end.host == host]

    def addresses_of(self, host: str) -> list[Interface]:
        return [a for _link, end in self.links_of(host) for a in end.addresses]


def with_sysctls(topo: Topology, per_host: dict[str, dict[str, int | str]]) -> Topology:
    """A copy of topo with extra sysctls on some hosts (e.g. a test's net.mptcp.pm_type=1)."""
    unknown = set(per_host) - set(topo.hosts)
    if unknown:
        raise ValueError(f"topology {topo.name} has no host(s) {sorted(unknown)}")
    hosts = {name: replace(host, sysctls={**host.sysctls, **per_host.get(name, {})})
             for name, host in topo.hosts.items()}
    return replace(topo, hosts=hosts)


def with_link_impairment(topo: Topology, **fields) -> Topology:
    """A copy of topo whose every link also has these Impairment fields (e.g. rate_bit=...)."""
    links = tuple(replace(link, impair=replace(link.impair or Impairment(), **fields))
                  for link in topo.links)
    return replace(topo, links=links)


def with_rates_scaled(topo: Topology, scale: float) -> Topology:
    """A copy of topo whose rate-limited links have their rate multiplied by scale."""
    links = tuple(replace(link, impair=replace(link.impair,
                                               rate_bit=int(link.impair.rate_bit * scale)))
                  if link.impair is not None and link.impair.rate_bit else link
                  for link in topo.links)
    return replace(topo, links=links)
