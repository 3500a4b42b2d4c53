"""Decode the kernel's MPTCP socket-option structures into dataclasses.

Layouts follow include/uapi/linux/mptcp.h and include/uapi/linux/tcp.h (Linux 6.12).
The kernel copies min(user size, kernel size) bytes, so a shorter reply from an older
kernel is zero-padded and a newer kernel's extra tail is ignored.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass, fields

from harness.mptcp.constants import MPTCP_INFO_FLAG_FALLBACK, MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED


def _unpack(fmt: struct.Struct, data: bytes) -> tuple:
    return fmt.unpack(data[: fmt.size].ljust(fmt.size, b"\0"))


@dataclass(frozen=True)
class MptcpInfo:
    """struct mptcp_info: the connection-level (MPTCP socket) view."""

    subflows: int  # additional subflows: the initial one is not counted
    add_addr_signal: int
    add_addr_accepted: int
    subflows_max: int
    add_addr_signal_max: int
    add_addr_accepted_max: int
    flags: int
    token: int
    write_seq: int
    snd_una: int
    rcv_nxt: int
    local_addr_used: int
    local_addr_max: int
    csum_enabled: int
    retransmits: int
    bytes_retrans: int
    bytes_sent: int
    bytes_received: int
    bytes_acked: int
    subflows_total: int  # all subflows, the initial one included
    last_data_sent: int
    last_data_recv: int
    last_ack_recv: int

    FORMAT = struct.Struct("<6B2xII3Q3Bx I4Q B3x 3I")

    @classmethod
    def decode(cls, data: bytes) -> MptcpInfo:
        return cls(*_unpack(cls.FORMAT, data))

    @property
    def fallback(self) -> bool:
        return bool(self.flags & MPTCP_INFO_FLAG_FALLBACK)

    @property
    def remote_key_received(self) -> bool:
        return bool(self.flags & MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED)


@dataclass(frozen=True)
class TcpInfo:
    """struct tcp_info of one subflow (times in microseconds as the kernel reports them)."""

    state: int
    ca_state: int
    retransmits: int
    probes: int
    backoff: int
    options: int
    wscale: int
    app_limited_fastopen: int
    rto: int
    ato: int
    snd_mss: int
    rcv_mss: int
    unacked: int
    sacked: int
    lost: int
    retrans: int
    fackets: int
    last_data_sent: int
    last_ack_sent: int
    last_data_recv: int
    last_ack_recv: int
    pmtu: int
    rcv_ssthresh: int
    rtt: int
    rttvar: int
    snd_ssthresh: int
    snd_cwnd: int
    advmss: int
    reordering: int
    rcv_rtt: int
    rcv_space: int
    total_retrans: int
    pacing_rate: int
    max_pacing_rate: int
    bytes_acked: int
    bytes_received: int
    segs_out: int
    segs_in: int
    notsent_bytes: int
    min_rtt: int
    data_segs_in: int
    data_segs_out: int
    delivery_rate: int
    busy_time: int
    rwnd_limited: int
    sndbuf_limited: int
    delivered: int
    delivered_ce: int
    bytes_sent: int
    bytes_retrans: int
    dsack_dups: int
    reord_seen: int
    rcv_ooopack: int
    snd_wnd: int
    rcv_wnd: int
    rehash: int
    total_rto: int
    total_rto_recoveries: int
    total_rto_time: int

    FORMAT = struct.Struct("<8B 24I 4Q 6I 4Q 2I 2Q 5I I 2H I")

    @classmethod
    def decode(cls, data: bytes) -> TcpInfo:
        return cls(*_unpack(cls.FORMAT, data))


for _cls, _size in ((TcpInfo, 248), (MptcpInfo, 96)):  # sizeof() in the 6.12 UAPI
    assert _cls.FORMAT.size == _size
    assert len(_cls.FORMAT.unpack(bytes(_size))) == len(fields(_cls))

SOCKADDR_STORAGE_SIZE = 128


def decode_sockaddr(data: bytes) -> tuple[str, int] | None:
    """Decode a struct sockaddr_in / sockaddr_in6 into (address, port); None if unset."""
    family = struct.unpack_from("=H", data)[0]
    if family == socket.AF_INET:
        port, raw = struct.unpack_from("!H4s", data, 2)
        return str(ipaddress.IPv4Address(raw)), port
    if family == socket.AF_INET6:
        port, _flow, raw = struct.unpack_from("!HI16s", data, 2)
        return str(ipaddress.IPv6Address(raw)), port
    return None


@dataclass(frozen=True)
class SubflowAddrs:
    """struct mptcp_subflow_addrs: local and remote (address, port) of one subflow."""

    local: tuple[str, int] | None
    remote: tuple[str, int] | None

    SIZE = 2 * SOCKADDR_STORAGE_SIZE

    @classmethod
    def decode(cls, data: bytes) -> SubflowAddrs:
        data = data.ljust(cls.SIZE, b"\0")
        return cls(decode_sockaddr(data[:SOCKADDR_STORAGE_SIZE]),
                   decode_sockaddr(data[SOCKADDR_STORAGE_SIZE:cls.SIZE]))


@dataclass(frozen=True)
class SubflowInfo:
    """struct mptcp_subflow_info: the subflow id and its addresses (MPTCP_FULL_INFO)."""

    id: int
    addrs: SubflowAddrs

    SIZE = 8 + SubflowAddrs.SIZE  # u32 id, padding to the 8-byte aligned sockaddr_storage

    @classmethod
    def decode(cls, data: bytes) -> SubflowInfo:
        return cls(struct.unpack_from("=I", data)[0], SubflowAddrs.decode(data[8:]))


@dataclass(frozen=True)
class Subflow:
    """One subflow as MPTCP_FULL_INFO reports it: id, addresses and its tcp_info."""

    id: int
    local: tuple[str, int] | None
    remote: tuple[str, int] | None
    tcp: TcpInfo


@dataclass(frozen=True)
class FullInfo:
    """struct mptcp_full_info decoded: the connection info plus every subflow."""

    num_subflows: int  # as counted by the kernel, may exceed len(subflows) if truncated
    mptcp: MptcpInfo
    subflows: tuple[Subflow, ...]
