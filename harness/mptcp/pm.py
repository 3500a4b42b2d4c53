"""The MPTCP path manager over generic netlink (Documentation/netlink/specs/mptcp_pm.yaml).

In-kernel PM: endpoints (add, delete, get, dump, flush, set flags) and limits. Userspace PM
(net.mptcp.pm_type=1): announce, remove, subflow create / destroy and set flags for one
connection, named by its token. Errors carry the kernel's errno and extack message.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.mptcp import netlink as nl
from harness.mptcp.constants import (
    MPTCP_PM_ADDR_FLAG_BACKUP,
    MPTCP_PM_ADDR_FLAG_FULLMESH,
    MPTCP_PM_ADDR_FLAG_IMPLICIT,
    MPTCP_PM_ADDR_FLAG_SIGNAL,
    MPTCP_PM_ADDR_FLAG_SUBFLOW,
)
from harness.netns import entered

MPTCP_PM_NAME, MPTCP_PM_VER = "mptcp_pm", 1
EVENTS_GROUP = "mptcp_pm_events"

# commands (enum in include/uapi/linux/mptcp_pm.h)
(CMD_ADD_ADDR, CMD_DEL_ADDR, CMD_GET_ADDR, CMD_FLUSH_ADDRS, CMD_SET_LIMITS, CMD_GET_LIMITS,
 CMD_SET_FLAGS, CMD_ANNOUNCE, CMD_REMOVE, CMD_SUBFLOW_CREATE, CMD_SUBFLOW_DESTROY) = range(1, 12)
# top-level attributes
ATTR_ADDR, ATTR_RCV_ADD_ADDRS, ATTR_SUBFLOWS, ATTR_TOKEN, ATTR_LOC_ID, ATTR_ADDR_REMOTE = \
    range(1, 7)
# attributes of a nested address
ADDR_FAMILY, ADDR_ID, ADDR_ADDR4, ADDR_ADDR6, ADDR_PORT, ADDR_FLAGS, ADDR_IF_IDX = range(1, 8)

FLAG_BITS = {
    "signal": MPTCP_PM_ADDR_FLAG_SIGNAL,
    "subflow": MPTCP_PM_ADDR_FLAG_SUBFLOW,
    "backup": MPTCP_PM_ADDR_FLAG_BACKUP,
    "fullmesh": MPTCP_PM_ADDR_FLAG_FULLMESH,
    "implicit": MPTCP_PM_ADDR_FLAG_IMPLICIT,
}


def flags_to_bits(flags) -> int:
    if isinstance(flags, str):
        raise TypeError(f"endpoint flags are a collection of names, e.g. {{{flags!r}}}")
    bits = 0
    for name in flags:
        if name not in FLAG_BITS:
            raise ValueError(f"unknown endpoint flag {name!r} (known: {', '.join(FLAG_BITS)})")
        bits |= FLAG_BITS[name]
    return bits


def bits_to_flags(bits: int) -> frozenset[str]:
    """Flag names of a bit mask; bits this code does not know (newer kernels) stay as hex."""
    known = {name for name, bit in FLAG_BITS.items() if bits & bit}
    unknown = {f"{1 << i:#x}" for i in range(32)
               if bits & (1 << i) and not (1 << i) & sum(FLAG_BITS.values())}
    return frozenset(known | unknown)


@dataclass(frozen=True)
class Endpoint:
    id: int
    addr: str
    flags: frozenset[str]
    port: int = 0
    ifindex: int = 0


@dataclass(frozen=True)
class Limits:
    subflows: int
    add_addr_accepted: int


def encode_address(kind: int, addr: str | None = None, id: int | None = None,
                   port: int | None = None, flags: int | None = None,
                   ifindex: int | None = None) -> bytes:
    """A nested MPTCP_PM_ADDR_ATTR_* block (family inferred from addr)."""
    parts = []
    if addr is not None:
        ip = ipaddress.ip_address(addr)
        if ip.version == 4:
            parts += [nl.attr_u16(ADDR_FAMILY, socket.AF_INET), nl.attr(ADDR_ADDR4, ip.packed)]
        else:
            parts += [nl.attr_u16(ADDR_FAMILY, socket.AF_INET6), nl.attr(ADDR_ADDR6, ip.packed)]
    if id is not None:
        parts.append(nl.attr_u8(ADDR_ID, id))
    if port is not None:
        parts.append(nl.attr_u16(ADDR_PORT, port))  # host byte order, as the spec says
    if flags is not None:
        parts.append(nl.attr_u32(ADDR_FLAGS, flags))
    if ifindex is not None:
        parts.append(nl.attr_s32(ADDR_IF_IDX, ifindex))
    return nl.nest(kind, *parts)


def decode_endpoint(payload: bytes) -> Endpoint:
    addr = nl.parse_attrs(nl.parse_attrs(payload)[ATTR_ADDR])
    if ADDR_ADDR4 in addr:
        ip = str(ipaddress.IPv4Address(addr[ADDR_ADDR4]))
    else:
        ip = str(ipaddress.IPv6Address(addr[ADDR_ADDR6]))
    return Endpoint(
        id=nl.u8(addr[ADDR_ID]),
        addr=ip,
        flags=bits_to_flags(nl.u32(addr.get(ADDR_FLAGS, b"\0\0\0\0"))),
        port=nl.u16(addr[ADDR_PORT]) if ADDR_PORT in addr else 0,
        ifindex=nl.s32(addr[ADDR_IF_IDX]) if ADDR_IF_IDX in addr else 0,
    )


def interface_index(ifname: str, ns: str | None) -> int:
    with entered(ns):
        try:
            return socket.if_nametoindex(ifname)
        except OSError:
            raise HarnessError(f"no interface {ifname!r} in namespace {ns}") from None


class PathManager:
    """The MPTCP path manager of one network namespace (None: the caller's)."""

    def __init__(self, ns: str | None = None):
        self.ns = ns
        self._genl = nl.GenlSocket(MPTCP_PM_NAME, ns)

    def __enter__(self) -> PathManager:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._genl.close()

    def _do(self, cmd: int, what: str, *attrs: bytes, dump: bool = False) -> list[bytes]:
        where = f" in {self.ns}" if self.ns else ""
        return self._genl.request(cmd, b"".join(attrs), f"mptcp_pm {what}{where}",
                                  MPTCP_PM_VER, dump)

    # ---- in-kernel PM: endpoints and limits ----------------------------------------------

    def add_endpoint(self, addr: str, id: int | None = None, flags=(), port: int | None = None,
                     ifname: str | None = None) -> Endpoint:
        """Add an endpoint; returns it as the kernel stored it (with the id it chose)."""
        ifindex = interface_index(ifname, self.ns) if ifname else None
        self._do(CMD_ADD_ADDR, f"add endpoint {addr}",
                 encode_address(ATTR_ADDR, addr, id, port, flags_to_bits(flags), ifindex))
        matches = [e for e in self.endpoints()
                   if e.addr == str(ipaddress.ip_address(addr)) and e.port == (port or 0)]
        if not matches:
            raise HarnessError(f"mptcp_pm accepted endpoint {addr} but does not list it")
        return matches[0]

    def del_endpoint(self, id: int) -> None:
        self._do(CMD_DEL_ADDR, f"delete endpoint id {id}", encode_address(ATTR_ADDR, id=id))

    def get_endpoint(self, id: int) -> Endpoint:
        (reply,) = self._do(CMD_GET_ADDR, f"get endpoint id {id}",
                            encode_address(ATTR_ADDR, id=id))
        return decode_endpoint(reply)

    def endpoints(self) -> list[Endpoint]:
        return [decode_endpoint(r) for r in self._do(CMD_GET_ADDR, "dump endpoints", dump=True)]

    def flush_endpoints(self) -> None:
        self._do(CMD_FLUSH_ADDRS, "flush endpoints")

    def set_endpoint_flags(self, id: int, flags) -> None:
        """Set the changeable flags (backup, fullmesh) of endpoint `id`; others are cleared."""
        self._do(CMD_SET_FLAGS, f"set flags of endpoint id {id}",
                 encode_address(ATTR_ADDR, id=id, flags=flags_to_bits(flags)))

    def set_limits(self, subflows: int | None = None, add_addr_accepted: int | None = None) -> None:
        attrs = []
        if add_addr_accepted is not None:
            attrs.append(nl.attr_u32(ATTR_RCV_ADD_ADDRS, add_addr_accepted))
        if subflows is not None:
            attrs.append(nl.attr_u32(ATTR_SUBFLOWS, subflows))
        self._do(CMD_SET_LIMITS, f"set limits {subflows=} {add_addr_accepted=}", *attrs)

    def limits(self) -> Limits:
        (reply,) = self._do(CMD_GET_LIMITS, "get limits")
        attrs = nl.parse_attrs(reply)
        return Limits(nl.u32(attrs[ATTR_SUBFLOWS]), nl.u32(attrs[ATTR_RCV_ADD_ADDRS]))

    # ---- userspace PM: one connection, by token ------------------------------------------

    def announce(self, token: int, addr: str, id: int, port: int | None = None) -> None:
        """ADD_ADDR of a local address (with a non-zero id) on connection `token`."""
        self._do(CMD_ANNOUNCE, f"announce {addr} id {id} on token {token:#x}",
                 nl.attr_u32(ATTR_TOKEN, token),
                 encode_address(ATTR_ADDR, addr, id, port, MPTCP_PM_ADDR_FLAG_SIGNAL))

    def remove(self, token: int, id: int) -> None:
        """REMOVE_ADDR of the local address id `id` on connection `token`."""
        self._do(CMD_REMOVE, f"remove id {id} on token {token:#x}",
                 nl.attr_u32(ATTR_TOKEN, token), nl.attr_u8(ATTR_LOC_ID, id))

    def subflow_create(self, token: int, local_addr: str, local_id: int, remote_addr: str,
                       remote_port: int, backup: bool = False) -> None:
        flags = MPTCP_PM_ADDR_FLAG_BACKUP if backup else None
        self._do(CMD_SUBFLOW_CREATE,
                 f"create subflow {local_addr} -> {remote_addr}:{remote_port} on token {token:#x}",
                 nl.attr_u32(ATTR_TOKEN, token),
                 encode_address(ATTR_ADDR, local_addr, local_id, flags=flags),
                 encode_address(ATTR_ADDR_REMOTE, remote_addr, port=remote_port))

    def subflow_destroy(self, token: int, local_addr: str, local_port: int, remote_addr: str,
                        remote_port: int) -> None:
        self._do(CMD_SUBFLOW_DESTROY,
                 f"destroy subflow {local_addr}:{local_port} -> {remote_addr}:{remote_port} "
                 f"on token {token:#x}",
                 nl.attr_u32(ATTR_TOKEN, token),
                 encode_address(ATTR_ADDR, local_addr, port=local_port),
                 encode_address(ATTR_ADDR_REMOTE, remote_addr, port=remote_port))

    def set_flags(self, token: int, local_addr: str, remote_addr: str, remote_port: int,
                  backup: bool, local_port: int | None = None) -> None:
        """MP_PRIO on the subflow local_addr -> remote_addr:remote_port of connection `token`."""
        bits = MPTCP_PM_ADDR_FLAG_BACKUP if backup else 0
        self._do(CMD_SET_FLAGS, f"set backup={backup} on {local_addr} on token {token:#x}",
                 nl.attr_u32(ATTR_TOKEN, token),
                 encode_address(ATTR_ADDR, local_addr, port=local_port, flags=bits),
                 encode_address(ATTR_ADDR_REMOTE, remote_addr, port=remote_port))
