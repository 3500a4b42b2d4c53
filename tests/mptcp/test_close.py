"""Both directions of an MPTCP connection: data both ways at once, half-close, DATA_FIN.

Each end sends seeded pseudo-random bytes and hashes (sha256) what it sends and what it
reads. A shutdown(SHUT_WR) closes one direction at the MPTCP level: the kernel sends a
DATA_FIN (a DSS option with the F flag) and the peer reads EOF, while the other direction
goes on. The connection-level states are read through sock_diag (harness.mptcp.diag, as
`ss -M` shows them).
"""

from __future__ import annotations

import hashlib
import random
import socket
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

from harness import traffic
from harness.mptcp import diag
from harness.mptcp.constants import IPPROTO_MPTCP
from harness.mptcp.sockets import (
    is_mptcp,
    open_socket,
    subflow_addrs,
    subflow_tcp_info,
    wait_subflows,
)
from harness.wait import wait_until

MB = 1_000_000
TIMEOUT = 60.0
BOTH_WAYS_BYTES = 6 * MB  # each way, through two-paths as written (scaled with its links)
SUBFLOW_MIN_BYTES = MB  # of them, through each subflow in each direction


def send_seeded(sock: socket.socket, nbytes: int, seed: int) -> str:
    """Send nbytes of seeded pseudo-random data; their sha256."""
    rng, digest, sent = random.Random(seed), hashlib.sha256(), 0
    while sent < nbytes:
        chunk = rng.randbytes(min(traffic.CHUNK, nbytes - sent))
        sock.sendall(chunk)
        digest.update(chunk)
        sent += len(chunk)
    return digest.hexdigest()


def receive_all(sock: socket.socket) -> tuple[int, str]:
    """Read until EOF: (bytes read, their sha256)."""
    digest, nbytes, buf = hashlib.sha256(), 0, bytearray(traffic.CHUNK)
    while (n := sock.recv_into(buf)) > 0:
        digest.update(memoryview(buf)[:n])
        nbytes += n
    return nbytes, digest.hexdigest()


def connected_pair(stack: ExitStack, topo) -> tuple[socket.socket, socket.socket]:
    """(client, server) ends of a new MPTCP connection client -> server's first address."""
    addr = topo.addresses("server", 4)[0]
    listener = stack.enter_context(open_socket(topo.ns("server"), socket.AF_INET,
                                               IPPROTO_MPTCP))
    listener.settimeout(TIMEOUT)
    listener.bind((addr, 0))
    listener.listen(1)
    client = stack.enter_context(traffic.connect(topo.ns("client"), addr,
                                                 listener.getsockname()[1]))
    server = stack.enter_context(listener.accept()[0])
    server.settimeout(TIMEOUT)
    assert is_mptcp(client) and is_mptcp(server)
    return client, server


def by_subflow(sock: socket.socket, field: str) -> dict[str, int]:
    """A tcp_info field of every subflow of sock, by the subflow's local address."""
    return {addrs.local[0]: getattr(tcp, field)
            for tcp, addrs in zip(subflow_tcp_info(sock), subflow_addrs(sock), strict=True)}


def test_both_ends_send_at_once_over_two_subflows(topology, paced_links):
    """6 MB each way at the same time; both subflows carry data in both directions.

    On a kernel that cannot fill the links (the default scheduler uses the second subflow
    only when the first one's link is full) they are scaled to what it fills (paced_links),
    and the data and the least each subflow must carry with them."""
    spec, scale = paced_links("two-paths", transfer=BOTH_WAYS_BYTES)
    topo = topology(spec)
    nbytes = int(BOTH_WAYS_BYTES * scale)
    with ExitStack() as stack:
        client, server = connected_pair(stack, topo)
        pool = stack.enter_context(ThreadPoolExecutor(4))
        up, down = pool.submit(receive_all, server), pool.submit(receive_all, client)
        sent_up = pool.submit(send_seeded, client, nbytes, 1)
        sent_down = pool.submit(send_seeded, server, nbytes, 2)
        wait_subflows(client, 2)
        digests = sent_up.result(TIMEOUT), sent_down.result(TIMEOUT)
        for sock in (client, server):
            traffic.wait_all_acked(sock)
        acked, got = by_subflow(client, "bytes_acked"), by_subflow(client, "bytes_received")
        for sock in (client, server):
            sock.shutdown(socket.SHUT_WR)
        received = up.result(TIMEOUT), down.result(TIMEOUT)
    print(f"\nclient subflows: sent (acked) {acked}, received {got}")
    assert received[0] == (nbytes, digests[0]), "client -> server data differs"
    assert received[1] == (nbytes, digests[1]), "server -> client data differs"
    assert set(acked) == set(topo.addresses("client", 4))
    for name, split in (("sent", acked), ("received", got)):
        assert min(split.values()) > SUBFLOW_MIN_BYTES * scale, \
            f"a subflow {name} little: {split}"


def state(ns: str) -> str:
    """The MPTCP-level state of the one connection of namespace ns ("gone" without one)."""
    conns = diag.connections(ns)
    assert len(conns) <= 1, f"more than one MPTCP connection in {ns}: {conns}"
    return conns[0].state if conns else "gone"


def wait_state(ns: str, *wanted: str) -> str:
    return wait_until(lambda: (s := state(ns)) in wanted and s, 10,
                      f"the connection in {ns} to be {' or '.join(wanted)}")


def test_half_close_sends_a_data_fin_and_the_other_direction_goes_on(topology, capture):
    """The client sends 1 MB then shuts its sending side; the server reads it all and EOF,
    then sends 1 MB the client reads in full, then shuts its side too.

    States (sock_diag): after the client's DATA_FIN is acknowledged the client is FIN-WAIT-2
    and the server CLOSE-WAIT; once the server's DATA_FIN went and was acknowledged both
    are closed (TCP_CLOSE, which ss names UNCONN), the sockets still open. On the wire the
    client's DATA_FIN rides on a TCP segment without FIN: its subflow stays open for the
    server's data, and subflow FINs come only after both DATA_FINs."""
    topo = topology("single-path")
    client_ns, server_ns = topo.ns("client"), topo.ns("server")
    cap = capture(client_ns, topo.interface("client", 0))
    with ExitStack() as stack:
        client, server = connected_pair(stack, topo)
        pool = stack.enter_context(ThreadPoolExecutor(1))
        upstream = pool.submit(receive_all, server)
        sent_up = send_seeded(client, MB, 1)
        client.shutdown(socket.SHUT_WR)
        assert upstream.result(TIMEOUT) == (MB, sent_up)  # all of it, then EOF
        wait_state(client_ns, "FIN-WAIT-2")
        wait_state(server_ns, "CLOSE-WAIT")
        downstream = pool.submit(receive_all, client)
        sent_down = send_seeded(server, MB, 2)
        server.shutdown(socket.SHUT_WR)
        assert downstream.result(TIMEOUT) == (MB, sent_down)  # all of it, then EOF
        wait_state(client_ns, "UNCONN")
        wait_state(server_ns, "UNCONN")
    cap.stop()
    check_data_fins(cap.segments(), topo.addresses("client", 4)[0],
                    topo.addresses("server", 4)[0])


def check_data_fins(segments, client: str, server: str) -> None:
    """One DATA_FIN from each side, in order, the server's data after the client's; the
    server's DATA_FIN numbered right after its last byte of data. On the wire the DATA_FIN
    may come before the end of that data: the kernel sends it on a pure ACK once all data
    went to the subflow, while TCP may still hold some of it in its queue."""
    def first(match) -> int:
        return next((i for i, s in enumerate(segments) if match(s)), len(segments))

    client_fin = first(lambda s: s.src == client and s.data_fin)
    server_fin = first(lambda s: s.src == server and s.data_fin)
    assert client_fin < len(segments), "no DATA_FIN from the client on the wire"
    assert server_fin < len(segments), "no DATA_FIN from the server on the wire"
    assert "F" not in segments[client_fin].flags, "the client's DATA_FIN came with a TCP FIN"
    server_data = [i for i, s in enumerate(segments) if s.src == server and s.payload_len]
    assert server_data and client_fin < min(server_data), \
        "the server's data did not come after the client's DATA_FIN"
    assert client_fin < server_fin, "the server's DATA_FIN came before the client's"
    data_fin = segments[server_fin].dss_mapping.data_end  # the DATA_FIN's own number
    end = max(m.data_end for i in server_data if (m := segments[i].dss_mapping))
    assert data_fin == end, \
        f"the server's DATA_FIN is at data sequence {data_fin}, its data ends at {end}"
    tcp_fins = [i for i, s in enumerate(segments) if "F" in s.flags]
    assert tcp_fins and min(tcp_fins) > server_fin, "a subflow FIN before the last DATA_FIN"
