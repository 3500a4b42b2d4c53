"""ADD_ADDR: the server announces an address from a signal endpoint; the client may use it."""

from harness import traffic
from harness.wait import wait_until

MB = 1_000_000


def test_signalled_address_is_accepted_and_joined(topology, mib):
    topo = topology("server-signals")
    client, server = topo.ns("client"), topo.ns("server")
    first, second = topo.addresses("server", 4)[:2]
    before_client, before_server = mib(client), mib(server)
    result = traffic.transfer(client, server, first, nbytes=10 * MB, subflows=2,
                              listen_addr="0.0.0.0")
    assert result.intact
    assert result.sent.info.add_addr_accepted == 1
    assert result.received.info.add_addr_signal == 1
    assert {a.remote[0] for a in result.sent.addrs} == {first, second}
    client_moved, server_moved = before_client.delta(mib(client)), before_server.delta(mib(server))
    assert client_moved.get("AddAddr") == 1 and client_moved.get("EchoAddTx") == 1
    assert server_moved.get("AddAddrTx") == 1 and server_moved.get("EchoAdd") == 1


def test_announced_address_is_not_used_beyond_the_accept_limit(topology, pm, mib):
    topo = topology("server-signals")
    client, server = topo.ns("client"), topo.ns("server")
    pm(client).set_limits(add_addr_accepted=0)
    before = mib(client)

    def add_addr_arrived(sock):
        wait_until(lambda: before.delta(mib(client)).get("AddAddr"), 5, "ADD_ADDR at the client")

    result = traffic.transfer(client, server, topo.addresses("server", 4)[0], nbytes=2 * MB,
                              listen_addr="0.0.0.0", on_connected=add_addr_arrived)
    assert result.intact
    moved = before.delta(mib(client))
    assert moved.get("AddAddr") == 1, moved  # the option arrived ...
    assert result.sent.info.add_addr_accepted == 0 and result.sent.info.subflows == 0  # unused
    assert "MPJoinSynTx" not in moved
