"""Resets at the MPTCP level: MP_FASTCLOSE (RFC 8684 section 3.5) and MP_TCPRST (section 3.6).

MP_FASTCLOSE is MPTCP's equivalent of a TCP RST for the whole connection: the kernel sends
it (on a RST of every subflow) when the application closes a socket that still has unread
data, or aborts it with SO_LINGER {on, 0} (net/mptcp/protocol.c, __mptcp_close ->
mptcp_do_fastclose). The peer checks the key it carries, closes every subflow and fails the
connection with ECONNRESET, as a TCP reset would (mptcp_check_fastclose).

MP_TCPRST rides on a subflow's RST and says why MPTCP reset it (a reason code, include/uapi/
linux/mptcp.h MPTCP_RST_*); the peer reports it in the `sub_closed` event
(MPTCP_ATTR_RESET_REASON, MPTCP_ATTR_RESET_FLAGS).
"""

from __future__ import annotations

import select
import socket
import struct
from contextlib import ExitStack

import pytest

from harness import traffic
from harness.mptcp.sockets import open_socket

MB = 1_000_000
MPTCP_RST_EPROHIBIT = 3  # "administratively prohibited"
RESET_WAIT = 10.0  # s: the peer's read fails within one RTT; generous under emulation


def open_pair(stack: ExitStack, client_ns: str, server_ns: str, addr: str):
    """A connected MPTCP (client, server) socket pair, closed when the stack unwinds."""
    listener = stack.enter_context(open_socket(server_ns, socket.AF_INET))
    listener.bind((addr, 0))
    listener.listen(1)
    client = stack.enter_context(traffic.connect(client_ns, addr, listener.getsockname()[1]))
    listener.settimeout(RESET_WAIT)
    server, _peer = listener.accept()
    stack.enter_context(server)
    server.settimeout(RESET_WAIT)
    return client, server


def fastclose_rsts(cap, src: str) -> list:
    return [s for s in cap.segments() if "R" in s.flags and s.src == src
            and "MP_FASTCLOSE" in s.mptcp_subtypes]


def check_fastclose(topo, before, mib, cap, server_sock) -> None:
    """The server's read fails with ECONNRESET; MIBs and the wire show the MP_FASTCLOSE."""
    client, server = topo.ns("client"), topo.ns("server")
    with pytest.raises(ConnectionResetError):
        while server_sock.recv(65536):
            pass
    cap.stop()
    client_moved = before["client"].delta(mib(client))
    server_moved = before["server"].delta(mib(server))
    assert client_moved.get("MPFastcloseTx") == 1, client_moved
    assert server_moved.get("MPFastcloseRx") == 1, server_moved
    (rst,) = fastclose_rsts(cap, topo.addresses("client", 4)[0])
    # MP_TCPRST goes along with it when there is room (net/mptcp/options.c)
    assert rst.mptcp_subtypes == ["MP_FASTCLOSE", "MP_TCPRST"], rst
    assert client_moved.get("MPRstTx") == 1 and server_moved.get("MPRstRx") == 1


def test_close_with_unread_data_sends_mp_fastclose(topology, mib, capture):
    topo = topology("single-path")
    client, server = topo.ns("client"), topo.ns("server")
    cap = capture(client, "eth0")
    with ExitStack() as stack:
        client_sock, server_sock = open_pair(stack, client, server, topo.addresses("server", 4)[0])
        server_sock.sendall(b"x" * 65536)
        readable, _, _ = select.select([client_sock], [], [], RESET_WAIT)
        assert readable, "the server's data never reached the client"
        before = {"client": mib(client), "server": mib(server)}
        client_sock.close()  # 64 KiB unread
        check_fastclose(topo, before, mib, cap, server_sock)


def test_abort_with_linger_zero_sends_mp_fastclose(topology, mib, capture):
    topo = topology("single-path")
    client, server = topo.ns("client"), topo.ns("server")
    cap = capture(client, "eth0")
    with ExitStack() as stack:
        client_sock, server_sock = open_pair(stack, client, server, topo.addresses("server", 4)[0])
        client_sock.sendall(b"y" * 1000)
        assert server_sock.recv(1000)  # the connection carried data both ways: fully established
        before = {"client": mib(client), "server": mib(server)}
        client_sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client_sock.close()  # nothing unread: only the linger setting makes it an abort
        check_fastclose(topo, before, mib, cap, server_sock)


def test_join_over_the_server_limit_is_reset_with_reason_prohibited(topology, pm, pm_events,
                                                                    mib, capture):
    """The server refuses the join at its third ACK with MP_TCPRST reason 3 (EPROHIBIT).

    With a subflow limit of 0 the server answers the MP_JOIN SYN, then finds it may not
    accept the subflow when the third ACK arrives (subflow_syn_recv_sock:
    mptcp_can_accept_new_subflow is false) and resets it with MPTCP_RST_EPROHIBIT. That
    reset is sent for the listener, without a subflow socket, so the server's MPRstTx does
    not count it. The client's join is not fully established yet (it waits for the fourth
    ACK), so it treats the reset as a segment without MPTCP option and resets the subflow
    itself (check_fully_established): its `sub_closed` event comes without reset
    attributes. Data goes on over the first subflow.
    """
    topo = topology("two-paths")
    client, server = topo.ns("client"), topo.ns("server")
    pm(server).set_limits(subflows=0)
    events = pm_events(client)
    cap = capture(client, "eth1")
    before = mib(server)
    with traffic.session(client, server, topo.addresses("server", 4)[0]) as live:
        live.sender.send(nbytes=MB)
        closed = events.wait_for("sub_closed", timeout=RESET_WAIT,
                                 saddr=topo.addresses("client", 4)[1])
        live.sender.send(nbytes=MB)
        end = live.sender.finish()
    cap.stop()
    received = live.sink.result()
    assert (received.nbytes, received.sha256) == (end.nbytes, end.sha256)
    assert end.info.subflows == 0
    moved = before.delta(mib(server))
    assert moved.get("MPJoinSynRx") == 1 and "MPJoinAckRx" not in moved, moved
    rst = next(s for s in cap.segments() if "R" in s.flags and s.src == closed.daddr)
    assert rst.mptcp_subtypes == ["MP_TCPRST"], rst
    (option,) = [data for kind, data in rst.options if kind == 30]
    assert option[1] == MPTCP_RST_EPROHIBIT, f"reason {option[1]}"
