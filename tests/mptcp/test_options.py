"""Connection options negotiated in the handshake and endpoint flavours: checksums, fullmesh."""

from harness import traffic
from harness.capture import FULL_SNAPLEN
from harness.mptcp import dss_checksum

MB = 1_000_000
CHECKSUMS = {"net.mptcp.checksum_enabled": 1}


def test_dss_checksums_are_negotiated_and_data_stays_intact(topology, mib, capture):
    topo = topology("single-path", client=CHECKSUMS, server=CHECKSUMS)
    client, server = topo.ns("client"), topo.ns("server")
    before = mib(server)
    cap = capture(client, "eth0")
    result = traffic.transfer(client, server, topo.addresses("server", 4)[0], nbytes=5 * MB)
    cap.stop()
    assert result.intact
    assert result.sent.info.csum_enabled == 1 and result.received.info.csum_enabled == 1
    assert "DataCsumErr" not in before.delta(mib(server))
    syn = next(s for s in cap.segments() if s.is_syn)
    (mp_capable,) = [data for kind, data in syn.options if kind == 30]
    assert mp_capable[1] & 0x80, "the SYN's MP_CAPABLE does not ask for checksums (flag A)"


def test_each_dss_checksum_on_the_wire_matches_the_data_it_maps(topology, capture):
    """The sender's checksums, recomputed from the captured payload (RFC 8684 3.3.1): the
    check that tells a sender's wrong checksum from a receiver's wrong sum."""
    topo = topology("single-path", client=CHECKSUMS, server=CHECKSUMS)
    cap = capture(topo.ns("client"), "eth0", snaplen=FULL_SNAPLEN)
    result = traffic.transfer(topo.ns("client"), topo.ns("server"),
                              topo.addresses("server", 4)[0], nbytes=2 * MB)
    cap.stop()
    assert result.intact
    assert cap.dropped == 0, f"the kernel dropped {cap.dropped} packets before tcpdump read them"
    checks = dss_checksum.check(cap.segments())
    checked = [c for c in checks if c.computed is not None]
    assert sum(c.mapping.length for c in checked) >= 2 * MB, \
        f"only {len(checked)} of {len(checks)} mappings could be checked"
    assert not [c.line() for c in checked if c.bad]


def test_checksums_stay_off_unless_asked(topology, capture):
    topo = topology("single-path")
    cap = capture(topo.ns("client"), "eth0")
    result = traffic.transfer(topo.ns("client"), topo.ns("server"),
                              topo.addresses("server", 4)[0], nbytes=MB)
    cap.stop()
    assert result.intact and result.sent.info.csum_enabled == 0
    syn = next(s for s in cap.segments() if s.is_syn)
    (mp_capable,) = [data for kind, data in syn.options if kind == 30]
    assert not mp_capable[1] & 0x80


def test_fullmesh_endpoints_join_every_signalled_address(topology, pm):
    topo = topology("server-signals")
    client, server = topo.ns("client"), topo.ns("server")
    manager = pm(client)
    manager.set_limits(subflows=4, add_addr_accepted=2)
    pm(server).set_limits(subflows=4, add_addr_accepted=2)
    for addr in topo.addresses("client", 4):
        manager.add_endpoint(addr, flags={"subflow", "fullmesh"})
    first, second = topo.addresses("server", 4)[:2]
    result = traffic.transfer(client, server, first, nbytes=10 * MB, subflows=4,
                              listen_addr="0.0.0.0")
    assert result.intact
    pairs = {(a.local[0], a.remote[0]) for a in result.sent.addrs}
    expected = {(local, remote) for local in topo.addresses("client", 4)
                for remote in (first, second)}
    assert pairs == expected, f"fullmesh subflows: {sorted(pairs)}"
