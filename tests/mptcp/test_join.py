"""MP_JOIN: additional subflows from in-kernel PM endpoints, their flags, limits and removal."""

from harness import traffic
from harness.mptcp.sockets import mptcp_info
from harness.wait import wait_until

MB = 1_000_000
TWO_PATHS_TRANSFER_BYTES = 20 * MB  # through two-paths as written (scaled with its links)
TWO_PATHS_MIN_SENT = 5 * MB  # of it, out of each client interface
TWO_PATHS_MIN_ACKED = 1 * MB  # of it, acknowledged on each subflow
ROUTER_TRANSFER_BYTES = 10 * MB  # through links as written (scaled with them)
ROUTER_MIN_SHARE = 0.2  # of the transfer, through each of the client's links


def client_subflow_endpoint(pm, topo):
    (endpoint,) = [e for e in pm(topo.ns("client")).endpoints() if "subflow" in e.flags]
    return endpoint


def test_subflow_endpoint_joins_and_both_subflows_carry_data(topology, paced_links, mib):
    """The default scheduler needs the second subflow only when the first one's link is
    full: the links, not the CPU, must set the pace. On a kernel that cannot fill them the
    links are scaled to what it fills (paced_links), and the transfer and the least each
    path must carry with them."""
    spec, scale = paced_links("two-paths", transfer=TWO_PATHS_TRANSFER_BYTES)
    topo = topology(spec)
    client, server = topo.ns("client"), topo.ns("server")
    before_client, before_server = mib(client), mib(server)
    sent_before = [topo.tx_bytes("client", iface) for iface in ("eth0", "eth1")]
    result = traffic.transfer(client, server, topo.addresses("server", 4)[0],
                              nbytes=int(TWO_PATHS_TRANSFER_BYTES * scale), subflows=2)
    sent_after = [topo.tx_bytes("client", iface) for iface in ("eth0", "eth1")]
    assert result.intact
    for iface, before, after in zip(("eth0", "eth1"), sent_before, sent_after, strict=True):
        assert after - before > TWO_PATHS_MIN_SENT * scale, \
            f"only {after - before} bytes left through {iface}"
    info = result.sent.info
    assert (info.subflows, info.subflows_total) == (1, 2)
    assert {a.local[0] for a in result.sent.addrs} == set(topo.addresses("client", 4))
    assert {a.remote[0] for a in result.sent.addrs} <= set(topo.addresses("server", 4))
    for sub in result.sent.subflows:
        assert sub.bytes_acked > TWO_PATHS_MIN_ACKED * scale, \
            f"a subflow carried only {sub.bytes_acked} bytes"
    client_moved, server_moved = before_client.delta(mib(client)), before_server.delta(mib(server))
    assert client_moved.get("MPJoinSynTx") == 1 and client_moved.get("MPJoinSynAckRx") == 1
    assert server_moved.get("MPJoinSynRx") == 1 and server_moved.get("MPJoinAckRx") == 1


def test_subflow_limit_zero_prevents_the_join(topology, pm, mib):
    topo = topology("two-paths")
    client, server = topo.ns("client"), topo.ns("server")
    pm(client).set_limits(subflows=0)
    before = mib(client)
    result = traffic.transfer(client, server, topo.addresses("server", 4)[0], nbytes=2 * MB)
    assert result.intact
    assert (result.sent.info.subflows, result.sent.info.subflows_max) == (0, 0)
    assert "MPJoinSynTx" not in before.delta(mib(client))


def test_backup_endpoint_joins_as_backup_and_stays_idle(topology, pm, mib):
    topo = topology("two-paths")
    client, server = topo.ns("client"), topo.ns("server")
    endpoint = client_subflow_endpoint(pm, topo)
    pm(client).set_endpoint_flags(endpoint.id, {"backup"})
    before = mib(server)
    result = traffic.transfer(client, server, topo.addresses("server", 4)[0], nbytes=10 * MB,
                              subflows=2)
    assert result.intact
    assert before.delta(mib(server)).get("MPJoinSynBackupRx") == 1
    backup = next(sub for sub, addrs in zip(result.sent.subflows, result.sent.addrs, strict=True)
                  if addrs.local[0] == endpoint.addr)
    assert backup.bytes_acked < 0.05 * 10 * MB, f"backup subflow sent {backup.bytes_acked} bytes"


def test_marking_an_endpoint_backup_mid_connection_sends_mp_prio(topology, pm, mib):
    topo = topology("two-paths")
    client, server = topo.ns("client"), topo.ns("server")
    addr = topo.addresses("server", 4)[0]
    endpoint = client_subflow_endpoint(pm, topo)
    with traffic.session(client, server, addr, subflows=2) as live:
        live.sender.send(nbytes=MB)  # data over the join: both ends consider it established
        before_client, before_server = mib(client), mib(server)
        pm(client).set_endpoint_flags(endpoint.id, {"backup"})
        wait_until(lambda: before_server.delta(mib(server)).get("MPPrioRx"), 5,
                   "MP_PRIO at the server")
        assert before_client.delta(mib(client)).get("MPPrioTx") == 1
        live.sender.send(nbytes=MB)
        end = live.sender.finish()
    assert live.sink.result().sha256 == end.sha256


def test_deleting_the_endpoint_closes_its_subflow_and_data_goes_on(topology, pm, mib):
    topo = topology("two-paths")
    client, server = topo.ns("client"), topo.ns("server")
    addr = topo.addresses("server", 4)[0]
    endpoint = client_subflow_endpoint(pm, topo)
    with traffic.session(client, server, addr, subflows=2) as live:
        live.sender.send(nbytes=MB)
        before = mib(client)
        pm(client).del_endpoint(endpoint.id)
        wait_until(lambda: mptcp_info(live.sock).subflows == 0, 5, "the subflow to be removed")
        assert before.delta(mib(client)).get("RmSubflow") == 1
        live.sender.send(nbytes=MB)
        end = live.sender.finish()
    received = live.sink.result()
    assert received.nbytes == end.nbytes and received.sha256 == end.sha256
    assert end.info.subflows == 0


def test_join_through_a_router_uses_both_client_links(topology, paced_links):
    """The default scheduler needs the second link only when the first is full: the links,
    not the CPU, must set the pace. On a kernel that cannot fill them (the debug kernel under
    emulation sent a third of one link's rate: see the README) the links are scaled to what
    it fills, and so is the transfer; eth1 must still carry a fifth of it. When it carries
    less, the message says how fast the sender went against the links' rate."""
    spec, scale = paced_links("routed", transfer=ROUTER_TRANSFER_BYTES)
    topo = topology(spec)
    nbytes = int(ROUTER_TRANSFER_BYTES * scale)
    sent_before = [topo.tx_bytes("client", iface) for iface in ("eth0", "eth1")]
    result = traffic.transfer(topo.ns("client"), topo.ns("server"),
                              topo.addresses("server", 4)[0], nbytes=nbytes, subflows=2)
    sent = [topo.tx_bytes("client", iface) - before
            for iface, before in zip(("eth0", "eth1"), sent_before, strict=True)]
    assert result.intact and result.sent.info.subflows_total == 2
    assert {a.local[0] for a in result.sent.addrs} == set(topo.addresses("client", 4))
    rates = [link.impair.rate_bit / 1e6 for link in topo.spec.links
             if link.impair and link.impair.rate_bit]
    assert min(sent) > ROUTER_MIN_SHARE * nbytes, (
        f"bytes out of eth0/eth1: {sent}; the sender went {result.sent.mbit_per_s:.1f} Mbit/s "
        f"through links of {rates} Mbit/s")
