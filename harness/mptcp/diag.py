"""`ss -M` in Python: list the MPTCP (or TCP) sockets of a namespace through sock_diag netlink.

The request is an inet_diag_req_v2 dump. MPTCP's protocol number, 262, does not fit the u8
sdiag_protocol field, so it travels in the INET_DIAG_REQ_PROTOCOL attribute (as iproute2's
ss does). Each reply carries the connection-level struct mptcp_info in INET_DIAG_INFO, which
also works for a connection that fell back to TCP (getsockopt no longer does then).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.mptcp.constants import IPPROTO_MPTCP
from harness.mptcp.structs import MptcpInfo
from harness.netns import entered

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
INET_DIAG_INFO = 2
INET_DIAG_REQ_PROTOCOL = 3
ALL_STATES = 0xFFFFFFFF
RECV_TIMEOUT = 5.0

TCP_STATES = {1: "ESTAB", 2: "SYN-SENT", 3: "SYN-RECV", 4: "FIN-WAIT-1", 5: "FIN-WAIT-2",
              6: "TIME-WAIT", 7: "UNCONN", 8: "CLOSE-WAIT", 9: "LAST-ACK", 10: "LISTEN",
              11: "CLOSING"}

_NLMSGHDR = struct.Struct("=IHHII")
_REQ_V2 = struct.Struct("=BBBxI")  # followed by the 48-byte inet_diag_sockid
_SOCKID = struct.Struct("!HH16s16s")  # ports and addresses in network order; if/cookie follow
_DIAG_MSG = struct.Struct("=BBBB")  # family, state, timer, retrans; then sockid, 5 x u32
_DIAG_MSG_SIZE = 4 + 48 + 20
_NLATTR = struct.Struct("=HH")


class DiagError(HarnessError):
    pass


@dataclass(frozen=True)
class DiagEntry:
    """What sock_diag says of every socket."""

    family: int
    state: str
    local: tuple[str, int]
    remote: tuple[str, int]
    inode: int


@dataclass(frozen=True)
class DiagSocket(DiagEntry):
    """One socket of a sock_diag dump, with the attributes the kernel sent for it."""

    attrs: dict[int, bytes]


@dataclass(frozen=True)
class MptcpConnection(DiagEntry):
    """One MPTCP socket as sock_diag reports it."""

    info: MptcpInfo | None

    @classmethod
    def of(cls, sock: DiagSocket) -> MptcpConnection:
        info = sock.attrs.get(INET_DIAG_INFO)
        return cls(sock.family, sock.state, sock.local, sock.remote, sock.inode,
                   MptcpInfo.decode(info) if info is not None else None)


def _request(family: int, protocol: int, seq: int, extensions: int) -> bytes:
    body = _REQ_V2.pack(family, protocol & 0xFF, extensions, ALL_STATES)
    body += bytes(48)  # an all-zero sockid matches every socket
    if protocol > 0xFF:  # MPTCP: in an attribute, see the module's docstring
        body += _NLATTR.pack(8, INET_DIAG_REQ_PROTOCOL) + struct.pack("=I", protocol)
    header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY,
                            NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    return header + body


def _address(family: int, raw: bytes) -> str:
    if family == socket.AF_INET:
        return str(ipaddress.IPv4Address(raw[:4]))
    return str(ipaddress.IPv6Address(raw))


def attributes(data: bytes) -> dict[int, bytes]:
    """Netlink attributes (type -> payload) packed one after the other in `data`."""
    attrs, pos = {}, 0
    while pos + _NLATTR.size <= len(data):
        length, kind = _NLATTR.unpack_from(data, pos)
        if length < _NLATTR.size:
            break
        attrs[kind & 0x3FFF] = data[pos + _NLATTR.size:pos + length]
        pos += (length + 3) & ~3
    return attrs


def parse_socket(payload: bytes) -> DiagSocket:
    family, state, _timer, _retrans = _DIAG_MSG.unpack_from(payload)
    sport, dport, src, dst = _SOCKID.unpack_from(payload, 4)
    inode = struct.unpack_from("=I", payload, _DIAG_MSG_SIZE - 4)[0]
    return DiagSocket(family, TCP_STATES.get(state, str(state)),
                      (_address(family, src), sport), (_address(family, dst), dport), inode,
                      attributes(payload[_DIAG_MSG_SIZE:]))


def _dump(sock: socket.socket, request: bytes) -> list[bytes]:
    sock.send(request)
    found = []
    while True:
        data = sock.recv(1 << 16)
        pos = 0
        while pos + _NLMSGHDR.size <= len(data):
            length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, pos)
            payload = data[pos + _NLMSGHDR.size:pos + length]
            pos += (length + 3) & ~3
            if kind == NLMSG_DONE:
                return found
            if kind == NLMSG_ERROR:
                err = -struct.unpack_from("=i", payload)[0]
                raise DiagError(f"sock_diag dump failed: errno {err}")
            found.append(payload)


def dump(ns: str | None, protocol: int, extensions: tuple[int, ...] = (INET_DIAG_INFO,)
         ) -> list[DiagSocket]:
    """Every socket of `protocol` (IPPROTO_TCP, IPPROTO_MPTCP) in namespace ns, IPv4 then
    IPv6, in every state, with the INET_DIAG_* `extensions` asked for (those that a request
    can name: up to INET_DIAG_SHUTDOWN)."""
    ext_bits = sum(1 << (ext - 1) for ext in extensions)
    with entered(ns):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
    with sock:
        sock.settimeout(RECV_TIMEOUT)
        return [parse_socket(payload)
                for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), start=1)
                for payload in _dump(sock, _request(family, protocol, seq, ext_bits))]


def connections(ns: str | None = None, include_listeners: bool = False) -> list[MptcpConnection]:
    """Every MPTCP socket of namespace ns (IPv4 and IPv6), like `ss -M`."""
    found = [MptcpConnection.of(sock) for sock in dump(ns, IPPROTO_MPTCP)]
    if include_listeners:
        return found
    return [c for c in found if c.state != "LISTEN"]
