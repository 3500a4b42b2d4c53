"""Failover: a connection outlives the loss of a path, under the default scheduler.

A path is "black-holed" with nftables rules in the client's namespace that drop every packet
in and out of that path's interface: nothing of it is delivered, nothing comes back. The
interface stays up and its routes stay; what the subflow's TCP sees is no answer (and a
local error when it transmits, as nftables drops in the output hook). MPTCP has to notice
by itself (the subflow turns stale) and move the data to another subflow. Each test adds
the rules after the connection is up, and removes them (the `black_hole` fixture removes
them too, also when the test fails).

How the data went is read from the kernel and the applications: the receiving
application's byte count over time, each subflow's MPTCP_TCPINFO bytes_acked at the client,
the MPTCP MIB counters (SubflowStale, SubflowRecover; MPTCPRetrans printed), the bytes that left
each client interface, and the rules' own counters. Run with -s to see the measurements.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from itertools import pairwise

import pytest

from harness import nft, traffic
from harness.mptcp.constants import IPPROTO_MPTCP
from harness.mptcp.sockets import open_socket, subflow_addrs, subflow_tcp_info, wait_subflows
from harness.run import run
from harness.wait import WaitTimeout, wait_until

MB = 1_000_000
NFT_TABLE = "mlabblackhole"  # not the topology's own table (harness.topology.live.NFT_TABLE)
# The longest stall of the receiver across a failover. Measured 0.22-0.55 s in the VM and
# 0.20-0.62 s on the host (see the test's docstring): the bound leaves 4.5 times that for a
# VM under software emulation on 2 cores shared with other runs, and still fails a failover
# that waits for the dead subflow's backed-off retransmission timer (1.6 s at the fourth
# expiry) and then some.
STALL_BOUND_S = 2.5
FAILOVER_BYTES = 12 * MB  # on two-paths as written; scaled with its links (paced_links)
SUBFLOW_CARRIED_MIN = 100_000  # bytes of FAILOVER_BYTES each subflow must have carried
BACKUP_IDLE_SHARE = 0.05  # of a phase's data, on the subflow that should stay idle
STALE_POLL_S = 0.02
STALE_LOW_CNT = 3  # 1 and 2 are not used: see the test
STALE_HIGH_CNT = 200  # below U8_MAX, where a subflow's own count stops
STALE_LOW_RUNS = 2  # connections with the low count
STALE_WAIT_S = 30.0  # for SubflowStale behind the closed window, with the low count
STALE_HIGH_WATCH = 3  # the high count is watched this many times the low count's slowest run
STALE_HIGH_MIN_WATCH_S = 5.0


@dataclass
class BlackHole:
    """nftables rules in namespace ns that drop every packet into and out of `iface`."""

    ns: str
    iface: str
    added: bool = field(default=False, init=False)

    def add(self) -> None:
        rules = (f'table inet {NFT_TABLE} {{\n'
                 f'  chain in {{ type filter hook prerouting priority -300;\n'
                 f'    iifname "{self.iface}" counter drop\n  }}\n'
                 f'  chain out {{ type filter hook output priority -300;\n'
                 f'    oifname "{self.iface}" counter drop\n  }}\n}}\n')
        run(["nft", "-f", "-"], ns=self.ns, input=rules)
        self.added = True

    def dropped(self) -> dict[str, int]:
        """Packets dropped so far, per chain ("in", "out")."""
        return nft.counters(self.ns, NFT_TABLE)

    def remove(self) -> None:
        """Let the path carry packets again (idempotent)."""
        if self.added:
            run(["nft", "delete", "table", "inet", NFT_TABLE], ns=self.ns)
            self.added = False


@pytest.fixture
def black_hole(topology):
    """Factory: black_hole(ns, iface) drops all traffic of iface in ns until .remove().

    Depends on `topology` so that it is torn down first: the rules go before the namespace.
    """
    with ExitStack() as stack:
        def make(ns: str, iface: str) -> BlackHole:
            hole = BlackHole(ns, iface)
            stack.callback(hole.remove)
            hole.add()
            return hole

        yield make


def receive_timed(sock: socket.socket, paused: threading.Event | None = None,
                  resume: threading.Event | None = None,
                  ) -> tuple[int, str, list[tuple[float, int]]]:
    """Read until EOF, then shut the sending side: (bytes, sha256, (time, total) after each
    read), the receiver's byte count over time. Once `paused` is set, stop reading until
    `resume` is: the receive window closes meanwhile."""
    digest, nbytes, buf, growth = hashlib.sha256(), 0, bytearray(traffic.CHUNK), []
    while (n := sock.recv_into(buf)) > 0:
        digest.update(memoryview(buf)[:n])
        nbytes += n
        growth.append((time.monotonic(), nbytes))
        if paused is not None and paused.is_set():
            resume.wait()
    sock.shutdown(socket.SHUT_WR)
    return nbytes, digest.hexdigest(), growth


def longest_stall(growth: list[tuple[float, int]], since: float) -> float:
    """The longest time from `since` during which the receiver's byte count did not grow."""
    times = [since] + [t for t, _total in growth if t > since]
    return max(later - earlier for earlier, later in pairwise(times))


@contextmanager
def accepted(ns: str, addr: str, timeout: float = 60.0) -> Iterator[tuple[int, Future]]:
    """An MPTCP listener on addr in ns: (its port, the future accepted socket)."""
    with open_socket(ns, socket.AF_INET, IPPROTO_MPTCP) as listener, \
            ThreadPoolExecutor(1) as pool:
        listener.settimeout(timeout)
        listener.bind((addr, 0))
        listener.listen(1)
        conn = pool.submit(listener.accept)
        try:
            yield listener.getsockname()[1], conn
        finally:
            if not conn.done():
                listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
            with suppress(Exception):
                conn.result()[0].close()


def acked_by_subflow(sock) -> dict[str, int]:
    """bytes_acked of each subflow of a client socket, by the subflow's local address."""
    return {addrs.local[0]: tcp.bytes_acked
            for tcp, addrs in zip(subflow_tcp_info(sock), subflow_addrs(sock), strict=True)}


def client_tx(topo) -> dict[str, int]:
    return {iface: topo.tx_bytes("client", iface) for iface in ("eth0", "eth1")}


@dataclass(frozen=True)
class Failover:
    """What a transfer across a black-holed path showed."""

    nbytes: int
    sha256: str
    end: traffic.TransferEnd
    stall: float  # the receiver's longest stall from the moment the rules went in
    dropped: dict[str, int]  # by the rules, per chain
    moved: dict[str, int]  # the client's MIB counters


@contextmanager
def stale_watch(mib, ns: str, since: list) -> Iterator[list[float]]:
    """While the block runs, a thread polls ns's SubflowStale every STALE_POLL_S; yields a
    list that gets the first moment (monotonic) it moved once `since` holds something."""
    baseline, moved, done = mib(ns).get("SubflowStale"), [], threading.Event()

    def watch() -> None:
        while not done.is_set() and not moved:
            if since and mib(ns).get("SubflowStale") > baseline:
                moved.append(time.monotonic())
            done.wait(STALE_POLL_S)

    with ThreadPoolExecutor(1) as pool:
        watcher = pool.submit(watch)
        try:
            yield moved
        finally:
            done.set()
            watcher.result()


def transfer_across_a_black_hole(topo, black_hole, mib, path: str, total: int,
                                 hole_at: int = 4 * MB) -> Failover:
    """`total` bytes from the client of topo (two-paths); `path` black-holed once `hole_at`
    bytes were written."""
    client, server, addr = topo.ns("client"), topo.ns("server"), topo.addresses("server", 4)[0]
    before, holes = mib(client), []

    def hole_once_written(sent: int) -> None:
        if sent >= hole_at and not holes:
            holes.append((black_hole(client, path), time.monotonic()))

    with accepted(server, addr) as (port, conn), \
            traffic.connect(client, addr, port) as sock, ThreadPoolExecutor(1) as pool:
        receiving = pool.submit(receive_timed, conn.result(timeout=30)[0])
        sender = traffic.Sender(sock)
        sender.send(nbytes=traffic.CHUNK)  # the client's PM joins once data went through
        wait_subflows(sock, 2)
        sender.send(nbytes=total - traffic.CHUNK, on_progress=hole_once_written)
        end = sender.finish()
        nbytes, sha256, growth = receiving.result(timeout=60)
    (hole, since), moved = holes[0], before.delta(mib(client))
    seen = Failover(nbytes, sha256, end, longest_stall(growth, since), hole.dropped(), moved)
    print(f"\n{path} black-holed after {hole_at} of {total} bytes: longest stall "
          f"{seen.stall:.3f} s, dropped {seen.dropped}, subflows {acked_by_subflow_end(end)}, "
          f"MIB {moved}")
    assert nbytes == end.nbytes == total and sha256 == end.sha256
    assert seen.dropped.get("in", 0) > 0 and seen.dropped.get("out", 0) > 0, seen.dropped
    return seen


@pytest.mark.parametrize("path", ["eth0", "eth1"])  # the initial subflow's path, the join's
def test_default_scheduler_fails_over_when_a_path_is_black_holed(topology, paced_links,
                                                                 black_hole, mib, path):
    """12 MB from the client; the path is black-holed once 4 MB were written.

    Both subflows must carry data before the hole, or there is nothing to fail over: the
    default scheduler uses the second one only when the first one's link is full, so the
    links, not the CPU, must set the pace. On a kernel that cannot fill them (the debug
    kernel under emulation: eth1 carried 4.4 kB of 12 MB once) the links are scaled to what
    it fills (paced_links), and the transfer, the hole's moment and the least a subflow
    must carry with them.

    The stall is the longest time the receiving application's byte count did not grow,
    from the moment the rules went in until the last byte (timestamps taken by the
    receiving thread after each read). Measured in the VM (TCG, 1 vCPU), 3 runs: 0.22, 0.27,
    0.55 s with the initial subflow's path (eth0) black-holed, 0.33, 0.36, 0.43 s with the
    join's (eth1); on the host 0.20-0.62 s. The bound, STALL_BOUND_S, says why 2.5 s."""
    spec, scale = paced_links("two-paths", transfer=FAILOVER_BYTES)
    seen = transfer_across_a_black_hole(topology(spec), black_hole, mib, path,
                                        int(FAILOVER_BYTES * scale), int(4 * MB * scale))
    carried = acked_by_subflow_end(seen.end)
    assert min(carried.values()) > SUBFLOW_CARRIED_MIN * scale, \
        f"a subflow carried nothing: {carried}"
    # SubflowStale and MPTCPRetrans are printed, not asserted. While the other path carries
    # data, every DATA_ACK re-arms MPTCP's retransmission timer, and only its rounds move a
    # dead subflow towards stale: whether it gets there depends on where the scheduler puts
    # data (it did not, in one VM run of eth1 on 2026-12-03). The stale_loss_cnt test below
    # makes the rounds come and asserts the marking. MPTCPRetrans stayed 0 in one host run
    # (6.18, eth1) where the dead subflow may have had nothing unacknowledged.
    assert seen.stall <= STALL_BOUND_S, f"the receiver stalled {seen.stall:.2f} s"


def test_stale_loss_cnt_zero_never_marks_the_dead_subflow_stale(topology, black_hole, mib):
    """net.mptcp.stale_loss_cnt = 0 turns stale detection off (with the default, 4, the test
    above sees SubflowStale move): the same black hole, no SubflowStale, and every byte
    still arrives, re-sent by MPTCP's own retransmission timer."""
    topo = topology("two-paths", client={"net.mptcp.stale_loss_cnt": 0})
    seen = transfer_across_a_black_hole(topo, black_hole, mib, "eth1", 8 * MB)
    assert seen.moved.get("SubflowStale", 0) == 0, f"stale with detection off: {seen.moved}"


def acked_by_subflow_end(end: traffic.TransferEnd) -> dict[str, int]:
    return {addrs.local[0]: tcp.bytes_acked
            for tcp, addrs in zip(end.subflows, end.addrs, strict=True)}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {key: after[key] - before.get(key, 0) for key in after}


def send_phase(live, nbytes: int) -> dict[str, int]:
    """Send nbytes, wait until all is acknowledged: what each subflow carried meanwhile."""
    before = acked_by_subflow(live.sock)
    live.sender.send(nbytes=nbytes)
    traffic.wait_all_acked(live.sock, timeout=30)
    return delta(before, acked_by_subflow(live.sock))


def subflow_from(sock, local: str):
    """MPTCP_TCPINFO of the subflow of a client socket whose local address is `local`."""
    for tcp, addrs in zip(subflow_tcp_info(sock), subflow_addrs(sock), strict=True):
        if addrs.local[0] == local:
            return tcp
    raise AssertionError(f"no subflow from {local} any more")


def wait_path_answers(sock, local: str, since: float, timeout: float = 30.0) -> float:
    """Wait until the subflow from `local` received an ACK after `since` (monotonic time):
    its path carries packets again. Its data stuck in the black hole, retransmitted, makes
    the peer answer. Returns how long that took from `since`."""
    def answered() -> bool:
        elapsed_ms = (time.monotonic() - since) * 1000
        return subflow_from(sock, local).last_ack_recv < elapsed_ms - 1

    wait_until(answered, timeout, f"an ACK on the subflow from {local}")
    return time.monotonic() - since


def test_backup_subflow_takes_over_while_the_primary_path_is_black_holed(
        topology, pm, black_hole, mib):
    """Three phases of 3 MB each: primary path up, primary black-holed, primary back.

    The backup flag is set on the client's subflow endpoint before the connection, so the
    join is a backup subflow (MP_JOIN with B). After the rules go, the next phase starts once
    the primary subflow received an ACK again. Measured in the VM (TCG, 1 vCPU), 3 runs: the
    backup subflow carried 0 B of the first phase and all 3 MB of the second (the primary
    0 B); the primary path answered 0.67-1.95 s after the rules went (its data, stuck, is
    retransmitted on a backed-off timer) and carried all of the third phase plus its stuck
    data (3.28-3.50 MB), the backup 0 B. The idle bound is 5% of a phase (BACKUP_IDLE_SHARE)."""
    topo = topology("two-paths")
    client, server = topo.ns("client"), topo.ns("server")
    (endpoint,) = [e for e in pm(client).endpoints() if "subflow" in e.flags]
    pm(client).set_endpoint_flags(endpoint.id, {"backup"})
    primary, backup = topo.addresses("client", 4)[0], endpoint.addr
    phase = 3 * MB
    before, before_server = mib(client), mib(server)
    with traffic.session(client, server, topo.addresses("server", 4)[0], subflows=2) as live:
        up = send_phase(live, phase)
        hole = black_hole(client, topo.interface_of("client", primary))
        down = send_phase(live, phase)
        hole.remove()
        recovery = wait_path_answers(live.sock, primary, time.monotonic())
        back = send_phase(live, phase)
        end = live.sender.finish()
    result = live.sink.result()
    moved = before.delta(mib(client))
    print(f"\nup {up}\nblack-holed {down}\nback ({recovery:.2f} s to recover) {back}\n"
          f"MIB {moved}\nserver MIB {before_server.delta(mib(server))}")
    assert result.nbytes == end.nbytes == traffic.CHUNK + 3 * phase
    assert result.sha256 == end.sha256
    assert up[backup] <= BACKUP_IDLE_SHARE * phase, f"the backup subflow carried data: {up}"
    assert down[primary] == 0 and down[backup] >= phase, f"no failover to the backup: {down}"
    assert moved.get("SubflowStale") == 1 and moved.get("SubflowRecover") == 1, moved
    assert back[primary] >= phase and back[backup] <= BACKUP_IDLE_SHARE * phase, \
        f"the data did not move back to the primary subflow: {back}"


def test_connection_survives_the_loss_of_its_initial_subflow_path(topology, pm, mib):
    """Break before make: the initial subflow's interface goes down while it is the only
    subflow; then a subflow endpoint on the other interface is added, the in-kernel PM opens
    a subflow from it on the live connection, and the data goes on there, intact."""
    topo = topology("two-paths")
    client, server = topo.ns("client"), topo.ns("server")
    manager = pm(client)
    (endpoint,) = [e for e in manager.endpoints() if "subflow" in e.flags]
    manager.del_endpoint(endpoint.id)  # one subflow only, until the "make"
    initial, other = topo.addresses("client", 4)
    before = mib(client)
    with traffic.session(client, server, topo.addresses("server", 4)[0]) as live:
        live.sender.send(nbytes=2 * MB)
        traffic.wait_all_acked(live.sock)
        assert set(acked_by_subflow(live.sock)) == {initial}
        run(["ip", "link", "set", topo.interface_of("client", initial), "down"], ns=client)
        at_break = acked_by_subflow(live.sock)
        tx_at_break = client_tx(topo)
        manager.add_endpoint(other, flags={"subflow"}, ifname=topo.interface_of("client", other))
        live.sender.send(nbytes=4 * MB)
        end = live.sender.finish()
    result = live.sink.result()
    after = acked_by_subflow_end(end)
    wire = delta(tx_at_break, client_tx(topo))
    print(f"\nsubflows at the break {at_break}, at the end {after}, wire after {wire}")
    assert result.nbytes == end.nbytes and result.sha256 == end.sha256
    assert after[initial] == at_break[initial], "the dead subflow got data acknowledged"
    assert after[other] >= 4 * MB, f"the new subflow carried too little: {after}"
    assert wire[topo.interface_of("client", initial)] == 0
    moved = before.delta(mib(client))
    assert moved.get("MPJoinSynTx") == 1 and moved.get("MPJoinSynAckRx") == 1, moved


def seconds_to_stale(topology, black_hole, mib, loss_cnt: int,
                     wait_s: float = STALE_WAIT_S) -> float | None:
    """Seconds from eth1's black hole to SubflowStale (None: not within wait_s).

    The hole comes once 4 MB were written, while both subflows carry data; the receiver
    stops reading at that moment and the client keeps writing. The window closes, eth0 goes
    idle, and what eth1 had in flight stays unacknowledged: nothing but MPTCP's own
    retransmission timer acts then, and each of its rounds finds eth1 without progress.
    While data flows instead, every DATA_ACK re-arms that timer, and how many rounds a dead
    subflow sees depends on where the scheduler happens to put data."""
    topo = topology("two-paths", client={"net.mptcp.stale_loss_cnt": loss_cnt})
    client, server, addr = topo.ns("client"), topo.ns("server"), topo.addresses("server", 4)[0]
    holes, paused, resume = [], threading.Event(), threading.Event()

    def hole_at_4mb(sent: int) -> None:
        if sent >= 4 * MB and not holes:
            black_hole(client, "eth1")
            holes.append(time.monotonic())
            paused.set()

    with accepted(server, addr) as (port, conn), \
            traffic.connect(client, addr, port) as sock, ThreadPoolExecutor(2) as pool, \
            stale_watch(mib, client, holes) as stale_at:
        try:
            receiving = pool.submit(receive_timed, conn.result(timeout=30)[0], paused, resume)
            sender = traffic.Sender(sock)
            sender.send(nbytes=traffic.CHUNK)  # the client's PM joins once data went through
            wait_subflows(sock, 2)
            sending = pool.submit(sender.send, nbytes=12 * MB, on_progress=hole_at_4mb)
            with suppress(WaitTimeout):
                wait_until(lambda: stale_at, wait_s, "SubflowStale")
        finally:
            resume.set()  # a paused receiver would hold the pool, and the test, forever
        sending.result(timeout=120)
        end = sender.finish()
        nbytes, sha256, _growth = receiving.result(timeout=60)
    assert nbytes == end.nbytes and sha256 == end.sha256
    return stale_at[0] - holes[0] if stale_at else None


def test_stale_loss_cnt_sets_how_soon_a_dead_subflow_goes_stale(topology, black_hole, mib):
    """net.mptcp.stale_loss_cnt counts MPTCP retransmission rounds without progress on a
    subflow before it is marked stale: the same black hole goes stale with 3 in every run,
    and not with 200 while watched three times as long as the slowest run with 3 took.
    seconds_to_stale() says how the rounds are made to come.

    Why not two close counts: how long a round lasts is not fixed. The MPTCP retransmission
    timer is armed from what is left of the other subflow's own timer, and the dead subflow
    goes stale only on a round where the other subflow's count is below max(stale_loss_cnt
    - 1, 1) (pm_kernel.c). Measured in the VM (TCG): 3 -> 0.67-2.91 s and 12 -> 1.23-5.96 s,
    ranges that overlap (CI failed once on 12 -> 2.67 s against 3 -> 2.91 s); on the host
    (6.18), 3 -> 0.89-1.15 s and 12 -> 2.34-3.53 s. 201 rounds take far longer than the
    watch: at 12, a round lasted 0.1 s or more.

    With a transfer that kept flowing over the other path instead (the first version of
    this test), the dead subflow went stale in 3 -> 0.15-1.16 s and 12 -> 1.86-3.18 s on
    one day (VM, TCG), and on another not at all in 15 of 20 transfers of 20-32 MB, on the
    kernel of our series and on the one before it: the rounds came only when data stuck on
    the dead subflow closed the receiver's window. Not asserted, seen while measuring that version:
    with 1 or 2 the dead subflow went stale only 7-11 s later or never, as it must wait for
    a round where the other subflow's own count is 0."""
    low = [seconds_to_stale(topology, black_hole, mib, STALE_LOW_CNT)
           for _ in range(STALE_LOW_RUNS)]
    print(f"\nseconds to SubflowStale with stale_loss_cnt {STALE_LOW_CNT}: {low}")
    assert None not in low, f"with {STALE_LOW_CNT}, a dead subflow never went stale: {low}"
    watch_s = max(STALE_HIGH_WATCH * max(low), STALE_HIGH_MIN_WATCH_S)
    high = seconds_to_stale(topology, black_hole, mib, STALE_HIGH_CNT, wait_s=watch_s)
    print(f"with {STALE_HIGH_CNT}, watched {watch_s:.2f} s: {high}")
    assert high is None, (f"with {STALE_HIGH_CNT}, the dead subflow went stale after {high:.2f} s,"
                          f" with {STALE_LOW_CNT} after {low}")
