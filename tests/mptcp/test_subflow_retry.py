"""net.mptcp.subflow_retries (patch 0009): the in-kernel PM creates again a subflow that an
error closed, after a backoff, a bounded number of times in a row.

On two-paths the client's PM creates the join from its eth1 endpoint. The join is made to
fail by a black hole on the client's eth1 (nftables; the subflow times out with
TCP_USER_TIMEOUT, of our 0002), by the client's eth1 going down (no route: the subflow
times out and its retries cannot even start), by a reset from the path (nftables `reject
with tcp reset` at the server), and by a server whose PM takes no more joins. The verdicts
come from the client's subflows (MPTCP_SUBFLOW_ADDRS, tcp_info), its MIB counters
(SubflowRetry, SubflowRetryJoin, MPJoinSynTx) and the segments on the wire.
"""

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from harness import nft, sysctl, traffic
from harness.mptcp.mib import snapshot as mib_snapshot
from harness.mptcp.sockets import subflow_addrs, tcp_info_by_local_address
from harness.run import run
from harness.sysctl import SysctlError
from harness.wait import WaitTimeout, wait_until

RETRY_PATCH = "mptcp-pm-in-kernel-create-again-the-subflows-that-an"  # 0009
SOL_TCP = socket.IPPROTO_TCP
TCP_ESTABLISHED = 1
JOIN_ADDR = "10.0.2.1"  # the client's eth1 endpoint on two-paths
SECOND_JOIN_ADDR = "10.0.2.3"  # another endpoint on eth1, added by one test
USER_TIMEOUT_MS = 1000  # how soon the black-holed subflow gives up (with data in flight)
RETRIES = 3
RETRY_TIMEOUT_S = 1  # the sysctls' unit: the shortest first wait
RETRY_MAX_TIMEOUT_S = 2
SUBFLOW_DEATH_S = 15.0  # for the black-holed subflow to time out (1 s, on TCG)
HOLE_AFTER_DEATH_S = 3.0  # the path stays dead this long after its subflow closed
# From the path's return to the join: the wait in progress (RETRY_MAX_TIMEOUT_S at most),
# then a SYN that may have gone into the hole (SYN retransmission: 1 s), then the handshake.
REJOIN_BOUND_S = 8.0
SERVER_SUBFLOWS = 4  # room for a join while the server still holds the dead one
OFF_WATCH_S = 6.0  # with retries off, no join may come in this long after the path's return
DATA_ON_REJOIN = 256 * 1024  # bytes the new subflow must carry
FIRST_DATA = 1000  # bytes acknowledged on the new subflow: it carries data (the SYN counts 1)
NFT_TABLE = "mlabretry"
# the eth1 subflow's segments, by its client port: a retry (a new port) passes, so that how
# long the rule's removal takes does not decide how many retries meet it
RESET_AT_SERVER = ('chain in {{ type filter hook input priority 0; '
                   'iifname "eth1" tcp sport {port} reject with tcp reset; }}')
RETRY_MEETS_DOWN_S = 10.0  # the first retry is RETRY_TIMEOUT_S after the subflow closed
HOLE = ('chain in { type filter hook prerouting priority -300; iifname "eth1" drop; }\n'
        'chain out { type filter hook output priority -300; oifname "eth1" drop; }')
# only the eth1 subflow's segments, by its client port: its retries (new ports) pass, so
# that a removal of the rule slower than the first retry's wait cannot eat the retry's SYN
# (it is dropped before the capture point, and TCP_USER_TIMEOUT ends the join before the
# SYN is sent again: counted in the MIB, never seen on the wire)
PORT_HOLE = ('chain in {{ type filter hook prerouting priority -300; '
             'iifname "eth1" tcp dport {port} drop; }}\n'
             'chain out {{ type filter hook output priority -300; '
             'oifname "eth1" tcp sport {port} drop; }}')


def retry_sysctl_missing() -> str | None:
    try:
        sysctl.read("net.mptcp.subflow_retries")
    except SysctlError:
        return "no net.mptcp.subflow_retries sysctl"
    return None


@pytest.fixture(autouse=True)
def series_applied(built_with):
    built_with(RETRY_PATCH, retry_sysctl_missing)


def client_sysctls(retries: int) -> dict[str, int]:
    return {"net.mptcp.subflow_retries": retries,
            "net.mptcp.subflow_retry_timeout": RETRY_TIMEOUT_S,
            "net.mptcp.subflow_retry_max_timeout": RETRY_MAX_TIMEOUT_S}


def user_timeout(sock: socket.socket) -> None:
    sock.setsockopt(SOL_TCP, socket.TCP_USER_TIMEOUT, USER_TIMEOUT_MS)


def join_info(sock: socket.socket, local: str = JOIN_ADDR):
    """tcp_info of the client's subflow from `local` (None: there is none)."""
    return tcp_info_by_local_address(sock).get(local)


def join_established(sock: socket.socket, local: str = JOIN_ADDR) -> bool:
    tcp = join_info(sock, local)
    return tcp is not None and tcp.state == TCP_ESTABLISHED


@contextmanager
def sending(sender: traffic.Sender):
    """The sender writes chunk after chunk in a thread while the block runs: every path that
    has a subflow carries data, so a path that dies leaves data in flight on its subflow."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            sender.send(nbytes=traffic.CHUNK)

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(loop)
        try:
            yield
        finally:
            stop.set()
            future.result(timeout=60)


def session(topo):
    client, server = topo.ns("client"), topo.ns("server")
    return traffic.session(client, server, topo.addresses("server", 4)[0],
                           listen_addr="0.0.0.0", subflows=2, before_connect=user_timeout)


def join_port(live) -> int:
    """The client's port of its subflow from the eth1 endpoint."""
    (port,) = [a.local[1] for a in subflow_addrs(live.sock)
               if a.local and a.local[0] == JOIN_ADDR]
    return port


@contextmanager
def join_black_holed(topo, live, rules: str = HOLE):
    """The client's eth1 is black-holed (`rules`: all of it, or PORT_HOLE for the join's
    segments only); the block runs once its subflow timed out, and the path comes back when
    the block ends."""
    with nft.table(topo.ns("client"), NFT_TABLE, rules):
        wait_until(lambda: not join_established(live.sock), SUBFLOW_DEATH_S,
                   "the black-holed subflow to time out")
        yield


def black_hole_until_the_join_closes(topo, live) -> float:
    """Black-hole the client's eth1 until its subflow timed out, and HOLE_AFTER_DEATH_S
    more; returns when the path came back (time.monotonic())."""
    with join_black_holed(topo, live):
        time.sleep(HOLE_AFTER_DEATH_S)  # retries go into the hole meanwhile
    return time.monotonic()


@contextmanager
def interface_down(ns: str, ifname: str):
    """ifname is down in ns while the block runs, up again when it ends."""
    run(["ip", "link", "set", ifname, "down"], ns=ns)
    try:
        yield
    finally:
        run(["ip", "link", "set", ifname, "up"], ns=ns)


@dataclass(frozen=True)
class Rejoin:
    """Seconds from the path's return to the new subflow's join, and to its first data."""
    joined: float
    carried_data: float

    def __str__(self) -> str:
        return f"joined {self.joined:.2f} s, carried data {self.carried_data:.2f} s"


def assert_rejoins_and_carries_data(live, back: float) -> Rejoin:
    """A subflow from the eth1 endpoint is established within REJOIN_BOUND_S of `back`
    (when the path came back) and has DATA_ON_REJOIN acknowledged; returns how long the
    join, and its first data acknowledged (FIRST_DATA), took after `back`."""
    wait_until(lambda: join_established(live.sock), REJOIN_BOUND_S,
               "a subflow from the eth1 endpoint again")
    joined = time.monotonic() - back
    wait_until(lambda: join_info(live.sock).bytes_acked >= FIRST_DATA, 30,
               "data on the new subflow")
    carrying = time.monotonic() - back
    wait_until(lambda: join_info(live.sock).bytes_acked >= DATA_ON_REJOIN, 30,
               "more data on the new subflow")
    return Rejoin(joined, carrying)


def rejoin_after(topology, pm, mib, kill) -> tuple[Rejoin, dict[str, int]]:
    """two-paths, retries on, data flowing on both subflows: kill(topo, live) makes the
    eth1 subflow die and returns when its path is back (time.monotonic()). A retry must
    join and carry data (assert_rejoins_and_carries_data) and every byte arrive. The
    server keeps its end of the dead subflow: it takes SERVER_SUBFLOWS. Returns the rejoin
    times and the client's MIB delta."""
    topo = topology("two-paths", client=client_sysctls(RETRIES))
    client = topo.ns("client")
    pm(topo.ns("server")).set_limits(subflows=SERVER_SUBFLOWS)
    with session(topo) as live:
        before = mib(client)
        with sending(live.sender):
            rejoined = assert_rejoins_and_carries_data(live, kill(topo, live))
        end = live.sender.finish()
        assert live.sink.result().sha256 == end.sha256
    return rejoined, before.delta(mib(client))


def assert_no_join_comes_back(live) -> None:
    """No subflow from the eth1 endpoint appears within OFF_WATCH_S."""
    with pytest.raises(WaitTimeout):
        wait_until(lambda: join_info(live.sock) is not None, OFF_WATCH_S,
                   "a subflow from the eth1 endpoint")


def test_a_subflow_that_timed_out_joins_again_once_its_path_is_back(topology, pm, mib):
    """With subflow_retries 3, the black-holed join times out, its retries go into the
    hole, and once the path is back a retry joins within REJOIN_BOUND_S and carries data;
    every byte arrives.

    Nothing tells the server that the client's subflow timed out: its end of the dead
    subflow lingers and counts against its limit (two-paths: 2), which would refuse the new
    join. The server takes SERVER_SUBFLOWS here, as a server that expects clients to
    come back on another path would."""
    rejoined, moved = rejoin_after(topology, pm, mib, black_hole_until_the_join_closes)
    print(f"\n{rejoined} after the path came back; MIB {moved}")
    assert 1 <= moved.get("SubflowRetry", 0) <= RETRIES, moved
    assert moved.get("SubflowRetryJoin") == 1, moved


def test_a_subflow_whose_interface_went_down_joins_again_once_it_is_up(topology, pm, mib):
    """The client's eth1 goes down with data in flight on its subflow: no route, the
    subflow times out, and its retries cannot even start (connect fails: no route through
    a device that is down). Once eth1 is up again, a retry joins within REJOIN_BOUND_S and
    carries data; every byte arrives. The server keeps its end of the dead subflow, as in
    the black-hole test: it takes SERVER_SUBFLOWS."""
    def down_then_up(topo, live) -> float:
        client = topo.ns("client")
        before = mib_snapshot(client)
        with interface_down(client, "eth1"):
            wait_until(lambda: not join_established(live.sock), SUBFLOW_DEATH_S,
                       "the subflow on the downed eth1 to time out")
            # up again once a retry met the downed interface, not after a fixed time: on a
            # slow kernel that time could take every retry
            wait_until(lambda: before.delta(mib_snapshot(client)).get(
                "MPJoinSynTxConnectErr", 0) >= 1, RETRY_MEETS_DOWN_S,
                "a retry to meet the downed eth1")
        return time.monotonic()

    rejoined, moved = rejoin_after(topology, pm, mib, down_then_up)
    print(f"\n{rejoined} after eth1 came up; MIB {moved}")
    assert moved.get("MPJoinSynTxConnectErr", 0) >= 1, moved  # a retry met the down link
    assert 2 <= moved.get("SubflowRetry", 0) <= RETRIES, moved
    assert moved.get("SubflowRetryJoin") == 1, moved


def test_a_subflow_reset_by_the_path_joins_again(topology, pm, mib):
    """The path resets the client's eth1 subflow (nftables at the server answers what
    arrives from that subflow with a TCP reset, as a firewall or NAT that lost its state
    would): its first retry, from another port, joins within REJOIN_BOUND_S of the reset
    and carries data; every byte arrives. The server's own end of the subflow never saw the
    reset and lingers, as in the black-hole test: it takes SERVER_SUBFLOWS."""
    def reset_by_the_path(topo, live) -> float:
        with nft.table(topo.ns("server"), NFT_TABLE, RESET_AT_SERVER.format(port=join_port(live))):
            wait_until(lambda: not join_established(live.sock), SUBFLOW_DEATH_S,
                       "the subflow on eth1 to be reset")
        return time.monotonic()

    rejoined, moved = rejoin_after(topology, pm, mib, reset_by_the_path)
    print(f"\n{rejoined} after the reset; MIB {moved}")
    assert moved.get("SubflowRetry") == 1 and moved.get("SubflowRetryJoin") == 1, moved


def test_a_closed_subflow_makes_room_for_an_endpoint_the_limit_held_back(topology, pm, mib):
    """mptcp_net-next #497. The client takes one subflow (limit subflows 1) and has two
    subflow endpoints on eth1: the PM joins from the first one only. Once that subflow is
    black-holed until it times out, the PM creates the second endpoint's subflow at once
    (before the first one's retry, RETRY_TIMEOUT_S later), it carries data, and the retry
    of the first one then finds no room: still one subflow joined, every byte delivered."""
    topo = topology("two-paths", client=client_sysctls(RETRIES))
    client = topo.ns("client")
    pm(topo.ns("server")).set_limits(subflows=SERVER_SUBFLOWS)
    pm(client).set_limits(subflows=1)
    run(["ip", "addr", "add", f"{SECOND_JOIN_ADDR}/24", "dev", "eth1"], ns=client)
    pm(client).add_endpoint(SECOND_JOIN_ADDR, flags=["subflow"], ifname="eth1")
    hole = (f'chain in {{ type filter hook prerouting priority -300; '
            f'ip daddr {JOIN_ADDR} drop; }}\n'
            f'chain out {{ type filter hook output priority -300; ip saddr {JOIN_ADDR} drop; }}')
    with session(topo) as live:
        assert join_info(live.sock, SECOND_JOIN_ADDR) is None  # the limit holds it back
        before = mib(client)
        with sending(live.sender), nft.table(client, NFT_TABLE, hole):
            wait_until(lambda: not join_established(live.sock), SUBFLOW_DEATH_S,
                       "the black-holed subflow to time out")
            closed = time.monotonic()
            wait_until(lambda: join_established(live.sock, SECOND_JOIN_ADDR), REJOIN_BOUND_S,
                       f"a subflow from {SECOND_JOIN_ADDR}")
            second_after = time.monotonic() - closed
            wait_until(lambda: join_info(live.sock, SECOND_JOIN_ADDR).bytes_acked
                       >= DATA_ON_REJOIN, 30, f"data on the subflow from {SECOND_JOIN_ADDR}")
            time.sleep(RETRY_TIMEOUT_S + 1)  # the first endpoint's retry is due by then
            retried = join_info(live.sock)  # a subflow (SYN_SENT into the hole) if it had room
            second_still_up = join_established(live.sock, SECOND_JOIN_ADDR)
        end = live.sender.finish()
        assert live.sink.result().sha256 == end.sha256
    moved = before.delta(mib(client))
    print(f"\n{SECOND_JOIN_ADDR} joined {second_after:.2f} s after {JOIN_ADDR}'s subflow "
          f"closed; MIB {moved}")
    assert retried is None and second_still_up, retried
    assert moved.get("SubflowRetry") == 1 and moved.get("SubflowRetryJoin", 0) == 0, moved


def test_with_retries_off_a_dead_subflow_stays_dead(topology, mib):
    """subflow_retries 0 (the default) keeps 6.12's behaviour: the same black hole, and no
    subflow from the eth1 endpoint comes back, nor any join SYN, once the path is back."""
    topo = topology("two-paths", client=client_sysctls(0))
    client = topo.ns("client")
    with session(topo) as live:
        before = mib(client)
        with sending(live.sender):
            black_hole_until_the_join_closes(topo, live)
            after_hole = mib(client)
            assert_no_join_comes_back(live)
        end = live.sender.finish()
        assert live.sink.result().sha256 == end.sha256
    moved = before.delta(mib(client))
    assert moved.get("SubflowRetry", 0) == 0 and moved.get("SubflowRetryJoin", 0) == 0, moved
    assert after_hole.delta(mib(client)).get("MPJoinSynTx", 0) == 0


def test_a_peer_that_refuses_every_join_gets_subflow_retries_attempts(topology, pm, mib,
                                                                      capture):
    """The server's PM stops taking joins (limit subflows 0: it resets each join at its third
    ACK) and the client's join dies in a black hole of its port, which is then gone (a retry,
    from another port, passes even while the rule is being removed). Each retry gets its
    SYN-ACK, then a RST: none is fully established, so the count does not restart, and
    subflow_retries (3) join attempts leave eth1, no more, while data flows on eth0."""
    topo = topology("two-paths", client=client_sysctls(RETRIES))
    client, server = topo.ns("client"), topo.ns("server")
    with session(topo) as live:
        pm(server).set_limits(subflows=0)
        before = mib(client)
        wire = capture(client, "eth1")
        with sending(live.sender):
            with join_black_holed(topo, live, PORT_HOLE.format(port=join_port(live))):
                pass  # the path comes back at once: the retries meet the server's refusal
            wait_until(lambda: before.delta(mib(client)).get("SubflowRetry", 0) >= RETRIES,
                       30, f"{RETRIES} retries")
            time.sleep(2 * RETRY_MAX_TIMEOUT_S + 1)  # a further retry would send its SYN by then
            wire.stop()
        end = live.sender.finish()
        assert live.sink.result().sha256 == end.sha256
    segments = wire.segments()
    attempts = {(s.sport, s.seq) for s in segments if s.flags == "S" and s.src == JOIN_ADDR}
    resets = [s for s in segments if "R" in s.flags and s.dst == JOIN_ADDR]
    moved = before.delta(mib(client))
    print(f"\njoin attempts on eth1: {len(attempts)}, RSTs from the server: {len(resets)}; "
          f"MIB {moved}")
    assert len(attempts) == RETRIES == len(resets), (attempts, resets)
    assert moved.get("SubflowRetry") == RETRIES and moved.get("SubflowRetryJoin", 0) == 0
    assert moved.get("MPJoinSynTx") == RETRIES, moved


def test_removing_the_endpoint_stops_its_retries(topology, pm, mib):
    """The join dies in the black hole, the PM schedules its first retry, and its endpoint
    is removed before that retry: once the path is back, no join SYN leaves, and nothing
    joins. (The PM schedules a retry when the MPTCP worker handles the dead subflow, after
    its TCP state already reads closed: an endpoint removed in between is never retried, as
    in one CI rehearsal, so the removal waits for SubflowRetry.)"""
    topo = topology("two-paths", client=client_sysctls(RETRIES))
    client = topo.ns("client")
    (endpoint,) = [e for e in pm(client).endpoints() if "subflow" in e.flags]
    with session(topo) as live:
        before = mib(client)
        with sending(live.sender):
            with join_black_holed(topo, live):
                wait_until(lambda: before.delta(mib(client)).get("SubflowRetry", 0) >= 1,
                           SUBFLOW_DEATH_S, "the PM to schedule the first retry")
                pm(client).del_endpoint(endpoint.id)  # within the first wait (1 s)
                removed = mib(client)
            assert_no_join_comes_back(live)
        end = live.sender.finish()
        assert live.sink.result().sha256 == end.sha256
    moved = before.delta(mib(client))
    print(f"\nMIB {moved}")
    assert moved.get("SubflowRetry") == 1 and moved.get("SubflowRetryJoin", 0) == 0, moved
    assert removed.delta(mib(client)).get("MPJoinSynTx", 0) == 0
