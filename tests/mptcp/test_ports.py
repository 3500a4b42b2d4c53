"""ADD_ADDR with a port: a signal endpoint with a port of its own, announced and joined there.

The server's in-kernel PM has the endpoint 10.0.2.2 port 10100 (topologies/ports-signal.toml).
For such an endpoint the PM opens a listener of its own on that address and port, the
ADD_ADDR it sends carries the port, and the client's MP_JOIN goes to that port, not to the
application's: the application listens on the first address only, so a join that reached the
second address anywhere but the PM's listener would be refused.
"""

from harness import traffic
from harness.capture import decode_add_addr
from harness.run import run
from harness.wait import wait_until

MB = 1_000_000
PM_PORT = 10100  # the endpoint's port in topologies/ports-signal.toml
SIGNAL_ADDR = "10.0.2.2"
TRANSFER_BYTES = 10 * MB  # through ports-signal as written (scaled with its links)
SUBFLOW_MIN_BYTES = MB  # of them, through each subflow
LISTENER_GONE = 5.0  # seconds; measured in test_port_endpoint_opens_a_listener_of_the_pm


def tcp_listeners(ns: str) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket listening in ns, as `ss -ltn` lists them."""
    listeners = set()
    for line in run(["ss", "-H", "-l", "-t", "-n"], ns=ns).stdout.splitlines():
        local = line.split()[3]  # State Recv-Q Send-Q Local:Port Peer:Port
        addr, _, port = local.rpartition(":")
        listeners.add((addr.strip("[]"), int(port)))
    return listeners


def add_addrs(segments) -> list:
    """Every ADD_ADDR option in the segments, decoded, in wire order."""
    return [decode_add_addr(data) for seg in segments for data in seg.mptcp_options("ADD_ADDR")]


def test_port_endpoint_opens_a_listener_of_the_pm(topology, pm):
    topo = topology("ports-signal")
    server = topo.ns("server")
    assert (SIGNAL_ADDR, PM_PORT) in tcp_listeners(server), "no PM listener on the endpoint port"
    (endpoint,) = pm(server).endpoints()
    assert (endpoint.addr, endpoint.port, endpoint.flags) == (SIGNAL_ADDR, PM_PORT, {"signal"})
    pm(server).del_endpoint(endpoint.id)
    # the listener goes with the endpoint, not at once: 0.18-0.41 s in the VM (TCG, loaded
    # host); 5 s is over ten times that
    wait_until(lambda: (SIGNAL_ADDR, PM_PORT) not in tcp_listeners(server), LISTENER_GONE,
               "the PM listener to close with its endpoint")


def test_add_addr_carries_the_port_and_the_join_goes_there(topology, paced_links, mib, capture):
    """Both subflows must carry data: on a kernel that cannot fill the links (the default
    scheduler uses the second subflow only when the first one's link is full) they are
    scaled to what it fills (paced_links), and the transfer and the least each subflow
    must carry with them."""
    spec, scale = paced_links("ports-signal", transfer=TRANSFER_BYTES)
    topo = topology(spec)
    client, server = topo.ns("client"), topo.ns("server")
    first = topo.addresses("server", 4)[0]
    before_client, before_server = mib(client), mib(server)
    first_path, second_path = capture(client, "eth0"), capture(client, "eth1")
    # the application listens on the first address only: the join can only land on the PM's
    result = traffic.transfer(client, server, first, nbytes=int(TRANSFER_BYTES * scale),
                              subflows=2)
    first_path.stop()
    second_path.stop()
    assert result.intact
    announced, echoed = split_echo(add_addrs(first_path.segments()))
    assert [(a.addr, a.port) for a in announced] == [(SIGNAL_ADDR, PM_PORT)]
    assert announced[0].hmac is not None, "an ADD_ADDR without its HMAC"
    assert [(a.addr, a.port) for a in echoed] == [(SIGNAL_ADDR, PM_PORT)]
    join_syns = [s for s in second_path.segments() if s.is_syn]
    assert [(s.dst, s.dport) for s in join_syns] == [(SIGNAL_ADDR, PM_PORT)]
    assert join_syns[0].mptcp_options("MP_JOIN"), "the SYN to the port carries no MP_JOIN"
    assert_port_counters(before_client.delta(mib(client)), before_server.delta(mib(server)))
    assert_both_subflows_carried_data(result.sent, first, SUBFLOW_MIN_BYTES * scale)


def split_echo(options: list) -> tuple[list, list]:
    return [a for a in options if not a.echo], [a for a in options if a.echo]


def assert_port_counters(client_moved: dict, server_moved: dict) -> None:
    """The kernel saw a port ADD_ADDR and a join on that port at both ends, no mismatch."""
    assert client_moved.get("PortAdd") == 1, client_moved
    assert client_moved.get("MPJoinPortSynAckRx") == 1, client_moved
    assert server_moved.get("MPJoinPortSynRx") == 1, server_moved
    assert server_moved.get("MPJoinPortAckRx") == 1, server_moved
    assert server_moved.get("MPJoinAckRx") == 1, server_moved
    mismatches = {k: v for k, v in server_moved.items() if k.startswith("MismatchPort")}
    assert not mismatches, mismatches


def assert_both_subflows_carried_data(sent, first: str, least: float) -> None:
    remotes = {a.remote for a in sent.addrs}
    assert (SIGNAL_ADDR, PM_PORT) in remotes and any(addr == first for addr, _ in remotes), remotes
    assert len(sent.subflows) == 2
    assert all(sub.bytes_acked > least for sub in sent.subflows), \
        [sub.bytes_acked for sub in sent.subflows]
