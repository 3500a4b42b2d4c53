"""MP_CAPABLE connections between hosts and bulk data that arrives intact."""

import socket
import threading
from contextlib import ExitStack

import pytest

from harness import traffic
from harness.mptcp.constants import IPPROTO_MPTCP
from harness.mptcp.sockets import mptcp_info, open_socket, unacked_bytes
from harness.wait import WaitTimeout, wait_until

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


def fill_until_blocked(sock: socket.socket) -> int:
    """Write until the socket would block; the bytes written."""
    sock.setblocking(False)
    written = 0
    try:
        while True:
            written += sock.send(bytes(traffic.CHUNK))
    except BlockingIOError:
        return written
    finally:
        sock.setblocking(True)


def stall(sock: socket.socket) -> int:
    """Write to a peer that reads nothing until some written data stays unsent; bytes written.

    The first EAGAIN can come while everything written is still in flight: keep writing
    until the peer's window is closed and MPTCP holds data it has not sent.
    """
    written = 0

    def unsent_data_waits() -> bool:
        nonlocal written
        written += fill_until_blocked(sock)
        return mptcp_info(sock).bytes_sent < written

    wait_until(unsent_data_waits, 10, "data to wait unsent in the MPTCP write queue")
    return written


def test_all_acked_means_every_byte_written_not_every_byte_sent(topology):
    """Against a peer that stops reading, data waits in the MPTCP write queue, unsent.

    MPTCP_INFO's bytes_sent leaves that data out: once what was sent is acked, bytes_acked
    equals bytes_sent with megabytes still to send. SIOCOUTQ (write_seq - snd_una) counts
    them, and wait_all_acked must wait until the reader took them.
    """
    topo = topology("single-path")
    addr = topo.addresses("server", 4)[0]
    with ExitStack() as stack:
        listener = stack.enter_context(open_socket(topo.ns("server"), socket.AF_INET,
                                                   IPPROTO_MPTCP))
        listener.bind((addr, 0))
        listener.listen(1)
        client = stack.enter_context(traffic.connect(topo.ns("client"), addr,
                                                     listener.getsockname()[1]))
        server = stack.enter_context(listener.accept()[0])
        written = stall(client)
        wait_until(lambda: (i := mptcp_info(client)).bytes_acked == i.bytes_sent, 10,
                   "what was sent to be acked")
        assert unacked_bytes(client) == written - mptcp_info(client).bytes_acked > 0
        with pytest.raises(WaitTimeout):
            traffic.wait_all_acked(client, timeout=1.0)
        reader = threading.Thread(target=server.recv, args=(written, socket.MSG_WAITALL))
        reader.start()
        traffic.wait_all_acked(client)
        acked = mptcp_info(client).bytes_acked
        reader.join(traffic.SOCKET_TIMEOUT)
    assert acked == written, f"wait_all_acked returned with {written - acked} bytes unacked"
