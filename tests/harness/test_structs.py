"""Decoding of the kernel's MPTCP structures from bytes laid out as in the UAPI headers."""

import socket
import struct

from harness.mptcp.structs import MptcpInfo, SubflowAddrs, SubflowInfo, TcpInfo, decode_sockaddr


def sockaddr_in(addr: str, port: int) -> bytes:
    raw = struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton(addr)
    return raw.ljust(128, b"\0")


def sockaddr_in6(addr: str, port: int) -> bytes:
    raw = (struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", port, 0)
           + socket.inet_pton(socket.AF_INET6, addr))
    return raw.ljust(128, b"\0")


def test_mptcp_info_offsets_follow_the_uapi_layout():
    data = bytearray(96)
    data[0:6] = bytes([1, 2, 3, 4, 5, 6])
    struct.pack_into("<II", data, 8, 0b11, 0xDEADBEEF)  # flags, token
    struct.pack_into("<QQQ", data, 16, 10, 20, 30)  # write_seq, snd_una, rcv_nxt
    data[40:43] = bytes([7, 8, 1])  # local_addr_used, local_addr_max, csum_enabled
    struct.pack_into("<IQQQQ", data, 44, 9, 11, 12, 13, 14)
    data[80] = 2  # subflows_total
    struct.pack_into("<III", data, 84, 15, 16, 17)
    info = MptcpInfo.decode(bytes(data))
    assert (info.subflows, info.add_addr_accepted_max, info.token) == (1, 6, 0xDEADBEEF)
    assert info.fallback and info.remote_key_received
    assert (info.write_seq, info.snd_una, info.rcv_nxt) == (10, 20, 30)
    assert (info.local_addr_used, info.local_addr_max, info.csum_enabled) == (7, 8, 1)
    assert (info.retransmits, info.bytes_retrans, info.bytes_sent) == (9, 11, 12)
    assert (info.bytes_received, info.bytes_acked, info.subflows_total) == (13, 14, 2)
    assert (info.last_data_sent, info.last_data_recv, info.last_ack_recv) == (15, 16, 17)


def test_short_reply_of_an_older_kernel_is_zero_padded():
    info = MptcpInfo.decode(bytes([3]) + bytes(79))  # 5.x kernels stop before subflows_total
    assert info.subflows == 3 and info.subflows_total == 0 and info.last_ack_recv == 0


def test_tcp_info_byte_counters_at_their_offsets():
    data = bytearray(TcpInfo.FORMAT.size)
    data[0] = 1  # TCP_ESTABLISHED
    struct.pack_into("<I", data, 68, 1234)  # tcpi_rtt
    struct.pack_into("<QQ", data, 120, 5000, 6000)  # bytes_acked, bytes_received
    struct.pack_into("<QQ", data, 200, 7000, 80)  # bytes_sent, bytes_retrans
    struct.pack_into("<HHI", data, 240, 3, 2, 99)
    info = TcpInfo.decode(bytes(data))
    assert info.state == 1 and info.rtt == 1234
    assert (info.bytes_acked, info.bytes_received) == (5000, 6000)
    assert (info.bytes_sent, info.bytes_retrans) == (7000, 80)
    assert (info.total_rto, info.total_rto_recoveries, info.total_rto_time) == (3, 2, 99)


def test_sockaddrs_v4_and_v6():
    assert decode_sockaddr(sockaddr_in("10.0.1.1", 443)) == ("10.0.1.1", 443)
    assert decode_sockaddr(sockaddr_in6("fd00::1", 8080)) == ("fd00::1", 8080)
    assert decode_sockaddr(bytes(128)) is None


def test_subflow_addrs_and_subflow_info():
    pair = sockaddr_in("10.0.2.1", 1000) + sockaddr_in("10.0.2.2", 2000)
    assert SubflowAddrs.decode(pair) == SubflowAddrs(("10.0.2.1", 1000), ("10.0.2.2", 2000))
    info = SubflowInfo.decode(struct.pack("=I4x", 7) + pair)
    assert info.id == 7 and info.addrs.remote == ("10.0.2.2", 2000)
