"""The sockets of a run's evidence (harness.mptcp.socket_listing), on the host's kernel: an
MPTCP connection with a join, listed through sock_diag as its hosts hold it."""

import re

from harness import traffic
from harness.mptcp import socket_listing
from harness.topology import load_named


def test_a_connection_is_listed_with_its_subflows_and_their_mptcp_state(mptcp_kernel,
                                                                        topology):
    topo = topology(load_named("two-paths"))
    client, server = topo.ns("client"), topo.ns("server")
    with traffic.session(client, server, topo.addresses("server", 4)[0], subflows=2) as live:
        live.sender.send(nbytes=100_000)
        text = socket_listing.listing(client)
        live.sender.finish()
    heads = [line for line in text.splitlines() if not line.startswith(" ")]
    assert len([h for h in heads if h.startswith("mptcp ESTAB ")]) == 1, text
    subflows = [h for h in heads if h.startswith("tcp ESTAB ") and h.endswith(" ulp:mptcp")]
    assert len(subflows) == 2, text
    assert re.search(r"mptcp_info: subflows=1 ", text), text
    flags = re.findall(r"flags=0x[0-9a-f]+\(([A-Z_,]+)\)", text)
    assert sorted("MCAP_LOC" in f or "JOIN_LOC" in f for f in flags) == [True, True], text
    assert {"bytes_acked", "snd_cwnd", "token_rem", "map_seq"} <= set(
        re.findall(r"(\w+)=", text)), text


def test_a_namespace_without_sockets_says_so(mptcp_kernel, topology):
    topo = topology(load_named("two-paths"))
    assert socket_listing.listing(topo.ns("server")) == "(no TCP or MPTCP socket)"

