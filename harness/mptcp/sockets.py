"""MPTCP sockets: open them in a namespace and read the kernel's view of them.

The subflow queries (MPTCP_TCPINFO, MPTCP_SUBFLOW_ADDRS, MPTCP_FULL_INFO) pass a header
*into* getsockopt, which Python's socket.getsockopt cannot do, so they go through libc.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import termios

from harness.mptcp.constants import (
    IPPROTO_MPTCP,
    MPTCP_FULL_INFO,
    MPTCP_INFO,
    MPTCP_SUBFLOW_ADDRS,
    MPTCP_TCPINFO,
    SOL_MPTCP,
    SOL_TCP,
    TCP_IS_MPTCP,
)
from harness.mptcp.diag import TCP_STATES
from harness.mptcp.structs import (
    FullInfo,
    MptcpInfo,
    Subflow,
    SubflowAddrs,
    SubflowInfo,
    TcpInfo,
)
from harness.netns import entered
from harness.wait import WaitTimeout, wait_until

TCP_ESTABLISHED = 1
MAX_SUBFLOWS = 16  # more than the kernel's limit of 8 additional subflows
_SUBFLOW_DATA = struct.Struct("=4I")  # struct mptcp_subflow_data (16 bytes, aligned 8)
_FULL_INFO_HEAD = struct.Struct("=6I2Q")  # struct mptcp_full_info up to mptcp_info

_libc = ctypes.CDLL(None, use_errno=True)
_libc.getsockopt.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                             ctypes.POINTER(ctypes.c_uint32)]


def open_socket(ns: str | None = None, family: int = socket.AF_INET,
                proto: int = IPPROTO_MPTCP) -> socket.socket:
    """A stream socket of `proto` (MPTCP by default) that lives in network namespace ns."""
    with entered(ns):
        return socket.socket(family, socket.SOCK_STREAM, proto)


def is_mptcp(sock: socket.socket) -> bool:
    """TCP_IS_MPTCP: true while the socket really runs MPTCP (false for TCP and after fallback)."""
    return bool(sock.getsockopt(SOL_TCP, TCP_IS_MPTCP))


def socket_protocol(sock: socket.socket) -> int:
    """SO_PROTOCOL as the kernel has it: IPPROTO_MPTCP (262) or IPPROTO_TCP (6).

    This, not TCP_IS_MPTCP, tells a plain TCP socket from an MPTCP one: an MPTCP socket that
    fell back to TCP still answers IPPROTO_MPTCP here, but 0 to TCP_IS_MPTCP, as TCP does.
    """
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL)


def _getsockopt(sock: socket.socket, level: int, name: int, buf: ctypes.Array) -> int:
    length = ctypes.c_uint32(len(buf))
    if _libc.getsockopt(sock.fileno(), level, name, buf, ctypes.byref(length)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"getsockopt({level}, {name}): {os.strerror(err)}")
    return length.value


def mptcp_info(sock: socket.socket) -> MptcpInfo:
    """MPTCP_INFO of an MPTCP socket."""
    data = sock.getsockopt(SOL_MPTCP, MPTCP_INFO, MptcpInfo.FORMAT.size)
    return MptcpInfo.decode(data)


def unacked_bytes(sock: socket.socket) -> int:
    """SIOCOUTQ: bytes the application wrote that the peer has not acknowledged yet.

    On an MPTCP socket this is write_seq - snd_una at the data (MPTCP) level, so it counts
    what still sits in the socket's write queue too, which MPTCP_INFO's bytes_sent does not.
    """
    buf = bytearray(struct.calcsize("i"))
    fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, buf)  # SIOCOUTQ is TIOCOUTQ
    return struct.unpack("i", buf)[0]


def _subflow_array(sock: socket.socket, optname: int, elem_size: int) -> list[bytes]:
    head = _SUBFLOW_DATA.size
    buf = ctypes.create_string_buffer(head + MAX_SUBFLOWS * elem_size)
    _SUBFLOW_DATA.pack_into(buf, 0, head, 0, 0, elem_size)
    _getsockopt(sock, SOL_MPTCP, optname, buf)
    _size, count, _size_kernel, size_user = _SUBFLOW_DATA.unpack_from(buf)
    raw = buf.raw
    count = min(count, MAX_SUBFLOWS)
    return [raw[head + i * size_user: head + (i + 1) * size_user] for i in range(count)]


def subflow_tcp_info(sock: socket.socket) -> list[TcpInfo]:
    """MPTCP_TCPINFO: the struct tcp_info of every subflow, in the kernel's list order."""
    return [TcpInfo.decode(d) for d in _subflow_array(sock, MPTCP_TCPINFO, TcpInfo.FORMAT.size)]


def subflow_addrs(sock: socket.socket) -> list[SubflowAddrs]:
    """MPTCP_SUBFLOW_ADDRS: local and remote address of every subflow."""
    return [SubflowAddrs.decode(d)
            for d in _subflow_array(sock, MPTCP_SUBFLOW_ADDRS, SubflowAddrs.SIZE)]


def tcp_info_by_local_address(sock: socket.socket) -> dict[str, TcpInfo]:
    """The tcp_info of every subflow by its local address (for subflows from distinct
    addresses). MPTCP_TCPINFO and MPTCP_SUBFLOW_ADDRS are two getsockopt calls: they are
    read again while a subflow came or went in between."""
    while True:
        addrs, infos = subflow_addrs(sock), subflow_tcp_info(sock)
        if len(addrs) == len(infos) and subflow_addrs(sock) == addrs:
            return {a.local[0]: info for a, info in zip(addrs, infos, strict=True)}


def full_info(sock: socket.socket) -> FullInfo:
    """MPTCP_FULL_INFO: mptcp_info plus id, addresses and tcp_info of every subflow, atomically."""
    tcp_size, sf_size = TcpInfo.FORMAT.size, SubflowInfo.SIZE
    sf_buf = ctypes.create_string_buffer(MAX_SUBFLOWS * sf_size)
    tcp_buf = ctypes.create_string_buffer(MAX_SUBFLOWS * tcp_size)
    buf = ctypes.create_string_buffer(_FULL_INFO_HEAD.size + MptcpInfo.FORMAT.size)
    _FULL_INFO_HEAD.pack_into(buf, 0, 0, tcp_size, 0, sf_size, 0, MAX_SUBFLOWS,
                              ctypes.addressof(sf_buf), ctypes.addressof(tcp_buf))
    _getsockopt(sock, SOL_MPTCP, MPTCP_FULL_INFO, buf)
    _tk, tcp_user, _sk, sf_user, num, _arrays, _p1, _p2 = _FULL_INFO_HEAD.unpack_from(buf)
    info = MptcpInfo.decode(buf.raw[_FULL_INFO_HEAD.size:])
    subflows = []
    for i in range(min(num, MAX_SUBFLOWS)):
        sf = SubflowInfo.decode(sf_buf.raw[i * sf_user:(i + 1) * sf_user])
        tcp = TcpInfo.decode(tcp_buf.raw[i * tcp_user:(i + 1) * tcp_user])
        subflows.append(Subflow(sf.id, sf.addrs.local, sf.addrs.remote, tcp))
    return FullInfo(num, info, tuple(subflows))


def wait_subflows(sock: socket.socket, count: int, timeout: float = 10.0) -> MptcpInfo:
    """Wait until `count` subflows (the initial one included) are in TCP_ESTABLISHED.

    Counting MPTCP_INFO's subflows is not enough: a joining subflow is counted from its SYN.
    """

    seen: list[int] = []

    def enough() -> MptcpInfo | None:
        seen[:] = [tcp.state for tcp in subflow_tcp_info(sock)]
        established = seen.count(TCP_ESTABLISHED)
        return mptcp_info(sock) if established >= count else None

    try:
        return wait_until(enough, timeout, f"{count} established subflows on the MPTCP connection")
    except WaitTimeout as timeout_error:
        states = ", ".join(TCP_STATES.get(state, str(state)) for state in seen) or "none"
        raise WaitTimeout(f"{timeout_error}; subflow TCP states at the end: {states}") from None
