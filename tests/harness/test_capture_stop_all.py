"""stop_all(): several captures stopped with one drain, on real tcpdumps in namespaces. What
went on each link before the stop is in its pcap, and no tcpdump is left running. Captures
with a filter are drained when their pcaps stop growing; those without one (the repro
runner's), once their pcaps hold as many packets as the kernel counted on the interface."""

import struct

import pytest

from harness import capture as capture_module
from harness import traffic
from harness.capture import (
    FULL_SNAPLEN,
    SNAPLEN,
    Capture,
    Drain,
    PcapCounter,
    read_pcap,
    stop_all,
)
from harness.evidence import link_capture_points
from harness.topology import load_named

FILTERS = pytest.mark.parametrize("bpf", [("tcp",), ()], ids=["tcp-only", "every-packet"])


def _captures_of(topo, tmp_path, bpf) -> list[Capture]:
    captures = [Capture(ns, iface, bpf=bpf, path=tmp_path / f"{host}-{iface}.pcap")
                for host, ns, iface in link_capture_points(topo)]
    for capture in captures:
        capture.start()
    for capture in captures:
        capture.wait_ready()
    return captures


def _connect_to_each_server_address(topo) -> None:
    for address in topo.addresses("server", 4):
        result = traffic.transfer(topo.ns("client"), topo.ns("server"), address,
                                  nbytes=1000, proto="tcp")
        assert result.intact


def _assert_each_pcap_has_the_whole_connection(captures: list[Capture]) -> None:
    for capture in captures:
        segments = read_pcap(capture.path)
        assert any(s.is_syn for s in segments), f"no SYN in {capture.path.name}"
        assert capture.dropped == 0, f"tcpdump's summary for {capture.path.name}"
        last = segments[-3:]
        assert any("F" in s.flags for s in last), f"no FIN at the end of {capture.path.name}"


@FILTERS
def test_stop_all_keeps_what_each_link_carried_until_the_stop(mptcp_kernel, topology, tmp_path,
                                                              bpf):
    topo = topology(load_named("two-paths"))
    captures = _captures_of(topo, tmp_path, bpf)
    try:
        _connect_to_each_server_address(topo)
        stop_all(captures)
        assert not any(capture.running for capture in captures)
    finally:
        for capture in captures:
            capture.close()
    _assert_each_pcap_has_the_whole_connection(captures)


@FILTERS
def test_a_drain_watching_since_before_the_traffic_still_waits_for_its_end(
        mptcp_kernel, topology, tmp_path, bpf):
    topo = topology(load_named("two-paths"))
    captures = _captures_of(topo, tmp_path, bpf)
    try:
        drain = Drain(captures)  # the pcaps' sizes now are stale once the traffic ran
        _connect_to_each_server_address(topo)
        stop_all(captures, drain)
        assert not any(capture.running for capture in captures)
    finally:
        for capture in captures:
            capture.close()
    _assert_each_pcap_has_the_whole_connection(captures)


def test_a_pcap_counter_counts_whole_records_as_they_are_written(tmp_path):
    pcap = tmp_path / "growing.pcap"
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 200, 1)
    record = struct.pack("<IIII", 1, 0, 60, 60) + bytes(60)
    counter = PcapCounter(pcap)
    assert counter.count() == 0  # not written yet
    pcap.write_bytes(header + record * 3 + record[:30])
    assert counter.count() == 3  # the fourth is cut short
    with pcap.open("ab") as more:
        more.write(record[30:] + record)
    assert counter.count() == 5


def test_the_kernel_ring_holds_as_many_whole_packets_as_small_ones():
    assert capture_module.buffer_kib(SNAPLEN) == capture_module.DEFAULT_BUFFER_KIB
    assert capture_module.buffer_kib(FULL_SNAPLEN) * 1024 // FULL_SNAPLEN == \
        capture_module.RING_PACKETS


def test_the_drops_are_read_from_tcpdumps_summary():
    summary = (b"tcpdump: listening on eth0, link-type EN10MB (Ethernet), snapshot length 200 "
               b"bytes\n1200 packets captured\n1231 packets received by filter\n"
               b"31 packets dropped by kernel\n")
    assert capture_module.dropped_by_kernel(summary) == 31
    assert capture_module.dropped_by_kernel(b"tcpdump: listening on eth0\n") is None
