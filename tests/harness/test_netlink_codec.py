"""Generic netlink framing and attributes, on bytes built by hand (no kernel needed)."""

import errno
import struct

import pytest

from harness.mptcp import netlink as nl
from harness.mptcp.events import EventKind, decode_event
from harness.mptcp.pm import (
    ATTR_ADDR,
    bits_to_flags,
    decode_endpoint,
    encode_address,
    flags_to_bits,
)


def test_attribute_padding_and_round_trip():
    raw = nl.attr_u8(1, 7) + nl.attr_u16(2, 0x1234) + nl.attr_u32(3, 99) + nl.attr_str(4, "ab")
    assert len(raw) % 4 == 0 and len(nl.attr_u8(1, 7)) == 8
    attrs = nl.parse_attrs(raw)
    assert (nl.u8(attrs[1]), nl.u16(attrs[2]), nl.u32(attrs[3]), nl.cstr(attrs[4])) == \
        (7, 0x1234, 99, "ab")


def test_nested_attribute_carries_the_nested_flag_and_parses_back():
    raw = nl.nest(1, nl.attr_u8(2, 5), nl.attr_u32(6, 3))
    assert struct.unpack_from("=H", raw, 2)[0] == 1 | nl.NLA_F_NESTED
    ((kind, inner),) = nl.iter_attrs(raw)
    assert kind == 1 and nl.parse_attrs(inner) == {2: b"\x05", 6: b"\x03\x00\x00\x00"}


def test_truncated_attribute_is_refused():
    with pytest.raises(ValueError):
        list(nl.iter_attrs(struct.pack("=HH", 40, 1) + b"abcd"))


def test_endpoint_address_encoding_round_trip():
    payload = encode_address(ATTR_ADDR, "fd00::2", id=4, port=8080,
                             flags=flags_to_bits({"signal", "backup"}))
    endpoint = decode_endpoint(payload)
    assert (endpoint.id, endpoint.addr, endpoint.port) == (4, "fd00::2", 8080)
    assert endpoint.flags == {"signal", "backup"}


def test_unknown_endpoint_flag_is_named():
    with pytest.raises(ValueError, match="'sigal'"):
        flags_to_bits({"sigal"})
    with pytest.raises(TypeError, match="collection"):
        flags_to_bits("signal")


def test_flag_bits_of_newer_kernels_are_kept():
    assert bits_to_flags(0b100010) == {"subflow", "0x20"}


def test_error_with_extack_message_is_decoded():
    request_header = nl.NLMSGHDR.pack(20, 28, 5, 1, 0)
    extack = nl.attr_str(nl.NLMSGERR_ATTR_MSG, "address not found")
    payload = struct.pack("=i", -errno.EINVAL) + request_header + extack
    err, message = nl.parse_error(payload, nl.NLM_F_CAPPED | nl.NLM_F_ACK_TLVS)
    assert (err, message) == (errno.EINVAL, "address not found")
    text = str(nl.NetlinkError("mptcp_pm delete endpoint id 3", err, message))
    assert "EINVAL" in text and "address not found" in text and "delete endpoint id 3" in text


def test_messages_are_split_on_aligned_boundaries():
    first = nl.message(28, 0, 1, 1, 1, nl.attr_u8(1, 1))
    second = nl.message(28, 0, 2, 3, 1, b"")
    parts = list(nl.split_messages(first + second))
    assert [(kind, seq) for kind, _flags, seq, _ in parts] == [(28, 1), (28, 2)]


def test_event_decoding_ports_are_big_endian():
    payload = (nl.attr_u32(1, 0xABCD) + nl.attr(5, bytes([10, 0, 0, 1]))
               + nl.attr(9, struct.pack("!H", 443)) + nl.attr_u8(18, 1))
    event = decode_event(1, payload)
    assert event.kind == EventKind.CREATED
    assert (event.token, event.saddr, event.sport, event.server_side) == \
        (0xABCD, "10.0.0.1", 443, 1)
    assert decode_event(99, b"").kind == 99
