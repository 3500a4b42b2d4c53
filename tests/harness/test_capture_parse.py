"""The pcap reader on packets built by hand (no tcpdump, no root)."""

import socket
import struct

from harness.capture import (
    LINKTYPE_ETHERNET,
    DataRun,
    DssMapping,
    data_runs,
    decode_dss_mapping,
    parse_tcp_options,
    read_pcap,
)


def tcp_header(sport, dport, flags, options=b""):
    options += b"\x00" * (-len(options) % 4)
    offset = (20 + len(options)) // 4
    return struct.pack("!HHIIHHHH", sport, dport, 1, 0, (offset << 12) | flags, 65535, 0, 0) \
        + options


def ipv4(src, dst, payload, ttl=64, tos=0):
    return struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(payload), 0, 0, ttl, 6, 0,
                       socket.inet_aton(src), socket.inet_aton(dst)) + payload


def ipv6(src, dst, payload, hlim=64, tclass=0):
    first = (6 << 28) | (tclass << 20)
    return struct.pack("!IHBB", first, len(payload), 6, hlim) \
        + socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) \
        + payload


def ether(packet, ethertype):
    return b"\x02" * 6 + b"\x04" * 6 + struct.pack("!H", ethertype) + packet


def pcap(frames):
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET)
    for frame in frames:
        out += struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame
    return out


MP_CAPABLE_SYN = bytes([30, 4, 0x01, 0x01])  # kind 30, len 4, subtype 0 version 1, flags
MSS = bytes([2, 4, 0x05, 0xB4])


def test_options_in_wire_order_nops_skipped():
    raw = MSS + b"\x01\x01" + bytes([30, 12, 0x10]) + bytes(9) + b"\x00"
    assert parse_tcp_options(raw) == ((2, b"\x05\xb4"), (30, bytes([0x10]) + bytes(9)))


def test_malformed_option_length_stops_parsing():
    assert parse_tcp_options(bytes([30, 0, 1, 2])) == ()


def test_read_pcap_v4_and_v6_segments(tmp_path):
    syn = ipv4("10.0.1.1", "10.0.1.2", tcp_header(1000, 80, 0x02, MSS + MP_CAPABLE_SYN),
               ttl=7, tos=0x10)
    data = ipv6("fd00::1", "fd00::2", tcp_header(1000, 80, 0x10) + b"x" * 100, hlim=9,
                tclass=0x20)
    path = tmp_path / "t.pcap"
    path.write_bytes(pcap([ether(syn, 0x0800), ether(data, 0x86DD)]))
    first, second = read_pcap(path)
    assert (first.src, first.dport, first.flags, first.is_syn) == ("10.0.1.1", 80, "S", True)
    assert first.mptcp_subtypes == ["MP_CAPABLE"] and (first.ttl, first.tos) == (7, 0x10)
    assert (second.src, second.payload_len, second.flags) == ("fd00::1", 100, "A")
    assert (second.ttl, second.tos, second.mptcp_subtypes) == (9, 0x20, [])


def dss(flags, *fields):
    """A DSS option's data (after kind and length): subtype 2, flags, then the fields."""
    return bytes([0x20, flags]) + b"".join(fields)


def test_dss_mapping_after_a_data_ack_of_either_size():
    mapping = struct.pack("!IIH", 0xDEADBEEF, 1001, 1400)
    assert decode_dss_mapping(dss(0x05, struct.pack("!I", 7), mapping)) == \
        decode_dss_mapping(dss(0x07, struct.pack("!Q", 7), mapping))
    found = decode_dss_mapping(dss(0x05, struct.pack("!I", 7), mapping))
    assert (found.dsn, found.ssn, found.length) == (0xDEADBEEF, 1001, 1400)


def test_dss_mapping_with_a_64_bit_dsn_and_a_checksum():
    data = dss(0x0C, struct.pack("!QIH", 1 << 40, 1, 100), b"\xab\xcd")
    assert decode_dss_mapping(data).dsn == 1 << 40


def test_a_data_fin_takes_the_last_number_of_its_mapping():
    alone = decode_dss_mapping(dss(0x1C, struct.pack("!QIH", 5000, 0, 1)))
    assert (alone.data_fin, alone.data_len, alone.data_end) == (True, 0, 5000)
    with_data = decode_dss_mapping(dss(0x1C, struct.pack("!QIH", 4000, 1, 1001)))
    assert (with_data.data_len, with_data.data_end) == (1000, 5000)


def test_no_mapping_in_a_pure_data_ack_or_a_truncated_option():
    assert decode_dss_mapping(dss(0x01, struct.pack("!I", 7))) is None
    assert decode_dss_mapping(dss(0x05, struct.pack("!I", 7), b"\x00\x01")) is None
    assert decode_dss_mapping(b"\x20") is None


def test_data_runs_follow_the_data_from_path_to_path():
    seen = {"eth0": [DssMapping(100, 1, 50), DssMapping(150, 51, 50), DssMapping(400, 101, 10)],
            "eth1": [DssMapping(200, 1, 200), DssMapping(200, 1, 200),
                     DssMapping(410, 0, 1, data_fin=True)]}
    assert data_runs(seen) == [DataRun("eth0", 100, 100), DataRun("eth1", 200, 200),
                               DataRun("eth0", 400, 10)]


def test_a_retransmission_inside_a_run_does_not_cut_it():
    seen = {"eth0": [DssMapping(0, 1, 100), DssMapping(50, 51, 50), DssMapping(100, 101, 20)]}
    assert data_runs(seen) == [DataRun("eth0", 0, 120)]
