"""A topology that is up: namespace names, addresses and interfaces of its hosts."""

from __future__ import annotations

import ipaddress

from harness import netns as namespaces
from harness import nft
from harness.errors import HarnessError
from harness.topology.model import Topology

NFT_TABLE = "mptcplab"


class Topo:
    def __init__(self, spec: Topology, run_id: str, namespaces: dict[str, str]):
        self.spec, self.run_id, self._namespaces = spec, run_id, namespaces

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def hosts(self) -> list[str]:
        return list(self.spec.hosts)

    def _host(self, host: str) -> str:
        if host not in self._namespaces:
            raise HarnessError(f"topology {self.name} has no host {host!r} "
                               f"(hosts: {', '.join(self.hosts)})")
        return host

    def ns(self, host: str) -> str:
        """The network namespace of a host."""
        return self._namespaces[self._host(host)]

    def addresses(self, host: str, family: int | None = None) -> list[str]:
        """The host's addresses in link order (4 or 6 to pick one family), without prefix."""
        return [str(a.ip) for a in self.spec.addresses_of(self._host(host))
                if family is None or a.version == family]

    def interface(self, host: str, index: int) -> str:
        """Name of the host's interface on its index-th link (in file order): eth<index>."""
        count = len(self.spec.links_of(self._host(host)))
        if not 0 <= index < count:
            raise HarnessError(f"host {host!r} has {count} interfaces, no index {index}")
        return f"eth{index}"

    def interface_of(self, host: str, address: str) -> str:
        """The host's interface that carries `address`."""
        wanted = ipaddress.ip_address(address)
        for i, (_link, end) in enumerate(self.spec.links_of(self._host(host))):
            if any(a.ip == wanted for a in end.addresses):
                return f"eth{i}"
        raise HarnessError(f"host {host!r} has no address {address}")

    def tx_bytes(self, host: str, iface: str) -> int:
        """Bytes the kernel sent out of one interface of a host so far (IFLA_STATS64)."""
        with namespaces.rtnetlink(self.ns(host)) as ipr:
            (link,) = ipr.get_links(ifname=iface)
            return link.get("IFLA_STATS64")["tx_bytes"]

    def middlebox_packets(self, host: str) -> int:
        """Packets the host's middlebox rule matched so far (its nftables counter)."""
        return nft.counted_packets(self.ns(host), NFT_TABLE)

    def state(self) -> dict:
        """What a later process needs to remove this topology: its namespaces, by name."""
        return {"topology": self.name, "run_id": self.run_id,
                "namespaces": list(self._namespaces.values())}

    def describe(self) -> str:
        lines = [f"topology {self.name} (run {self.run_id})"]
        if self.spec.description:
            lines.append(f"  {self.spec.description}")
        for host in self.hosts:
            lines.append(f"  {host}: namespace {self.ns(host)}   "
                         f"enter: ip netns exec {self.ns(host)} bash")
            for i, (_link, end) in enumerate(self.spec.links_of(host)):
                peer = next(e.host for e in _link.ends if e is not end)
                addresses = ", ".join(str(a) for a in end.addresses)
                lines.append(f"    eth{i} -> {peer}: {addresses}")
        return "\n".join(lines)
