"""The DSS checksum checker on segments built by hand (the kernel's own checksums are
checked against it in tests/mptcp/test_options.py)."""

import struct

from harness.capture import Segment
from harness.mptcp.dss_checksum import check, dss_checksum, ones_complement_sum, streams

ISN = 0xFFFFFF00  # the subflow's sequence numbers wrap inside the test
CLIENT, SERVER = ("10.0.1.1", 40000), ("10.0.1.2", 10000)


def dss_option(dsn, ssn, length, checksum, data_fin=False):
    flags = 0x04 | 0x08 | (0x10 if data_fin else 0)  # DSN present, 8 bytes
    return (30, bytes([0x20, flags]) + struct.pack("!QIHH", dsn, ssn, length, checksum))


def segment(rel_seq, payload=b"", flags="A", options=()):
    return Segment(CLIENT[0], SERVER[0], CLIENT[1], SERVER[1], flags, tuple(options),
                   len(payload), 64, 0, seq=(ISN + rel_seq) % (1 << 32), payload=payload)


def connection(data, dsn=1 << 40, checksum=None, data_fin=False):
    """A SYN, then `data` in two segments under one mapping from relative sequence 1."""
    length = len(data) + data_fin
    if checksum is None:
        checksum = dss_checksum(dsn, 1, length, data)
    option = dss_option(dsn, 1, length, checksum, data_fin)
    half = len(data) // 2
    return [segment(0, flags="S"), segment(1, data[:half], options=[option]),
            segment(1 + half, data[half:], options=[option])]


def test_a_checksum_sums_to_all_ones_with_its_data_and_pseudo_header():
    data = bytes(range(251)) * 3  # odd length
    csum = dss_checksum(7 << 33, 1234, len(data), data)
    header = struct.pack("!QIHH", 7 << 33, 1234, len(data), csum)
    assert ones_complement_sum(header, ones_complement_sum(data)) == 0xFFFF


def test_a_right_checksum_is_checked_and_good():
    (result,) = check(connection(b"hello multipath" * 100))
    assert result.computed == result.mapping.checksum and not result.bad


def test_a_data_fin_counts_in_the_length_not_in_the_data():
    (result,) = check(connection(b"last bytes", data_fin=True))
    assert result.data_fin and not result.bad


def test_a_byte_changed_on_the_way_makes_the_checksum_wrong():
    segments = connection(b"hello multipath" * 100)
    good = segments[2]
    changed = bytearray(good.payload)
    changed[10] ^= 0x01
    segments[2] = segment(1 + 750, bytes(changed), options=good.options)
    (result,) = check(segments)
    assert result.bad and "option" in result.line()


def test_a_mapping_whose_bytes_were_not_captured_is_not_checkable():
    segments = connection(b"x" * 100)
    del segments[2]
    (result,) = check(segments)
    assert result.computed is None and not result.bad


def test_mappings_after_a_fast_open_syn_count_from_the_end_of_its_data():
    data = b"after the syn" * 50
    option = dss_option(1 << 40, 1, len(data), dss_checksum(1 << 40, 1, len(data), data))
    syn = segment(0, b"in the syn" * 30, flags="S")
    (result,) = check([syn, segment(1 + syn.payload_len, data, options=[option])])
    assert result.computed is not None and not result.bad


def test_a_retransmission_that_changes_bytes_is_noticed():
    segments = connection(b"a" * 100)
    segments.append(segment(21, b"b" * 10))
    (stream,) = streams(segments).values()
    assert stream.differing == [21]
