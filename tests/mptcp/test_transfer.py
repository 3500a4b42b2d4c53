"""MP_CAPABLE connections between hosts and bulk data that arrives intact."""

from harness import traffic

MB = 1_000_000


def test_50mb_transfer_arrives_intact(topology, mib):
    topo = topology("single-path")
    client, server = topo.ns("client"), topo.ns("server")
    before_client, before_server = mib(client), mib(server)
    result = traffic.transfer(client, server, topo.addresses("server", 4)[0], nbytes=50 * MB)
    assert result.intact, "sha256 of the bytes received differs from the bytes sent"
    assert result.received.nbytes == 50 * MB
    assert result.sent.is_mptcp and result.received.is_mptcp
    # the MPTCP-level (data sequence) counters account for every byte, once
    assert result.sent.info.bytes_acked == 50 * MB
    assert result.received.info.bytes_received == 50 * MB
    assert before_client.delta(mib(client)).get("MPCapableSYNACKRX") == 1
    assert before_server.delta(mib(server)).get("MPCapableACKRX") == 1


def test_duration_mode_sends_for_the_given_time(topology):
    topo = topology("single-path")
    result = traffic.transfer(topo.ns("client"), topo.ns("server"),
                              topo.addresses("server", 4)[0], seconds=1.0)
    assert result.intact and result.sent.nbytes > 0
    assert 0.9 <= result.sent.seconds < 3.0


def test_subflow_byte_counters_add_up_to_the_connection(topology):
    topo = topology("single-path")
    result = traffic.transfer(topo.ns("client"), topo.ns("server"),
                              topo.addresses("server", 4)[0], nbytes=5 * MB)
    (subflow,) = result.sent.subflows
    # the subflow carries every byte, plus what MPTCP itself retransmitted (its own timer
    # resends data on the same subflow under load) and at most one sequence number more
    retransmitted = result.sent.info.bytes_retrans
    assert 5 * MB <= subflow.bytes_acked <= 5 * MB + 1 + retransmitted, \
        f"subflow bytes_acked {subflow.bytes_acked}, MPTCP bytes_retrans {retransmitted}"
    (server_subflow,) = result.received.subflows
    assert server_subflow.bytes_received >= 5 * MB
