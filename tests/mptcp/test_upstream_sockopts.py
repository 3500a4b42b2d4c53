"""Upstream socket options of MPTCP sockets reach every subflow, joins included (6.12).

Each option is set on the MPTCP socket while only the initial subflow exists; then the
client's "subflow" endpoint is added back and the second subflow joins. The option must
show on both: the one that existed when it was set, and the one created after. It is
checked where the kernel applies it: packet marks counted by nftables per interface, the
TOS byte and keepalive probes on the wire, congestion control and bound device through
sock_diag (`ss`). Our series' own options (TCP_MAXSEG, IP_TTL, ...) are in test_sockopts.py.
"""

import socket
import time
from contextlib import contextmanager

import pytest

from harness import netns as namespaces
from harness import nft, sysctl, traffic
from harness.mptcp.sockets import subflow_addrs, wait_subflows
from harness.mptcp.ss import tcp_sockets
from harness.run import run
from harness.topology import load_named, with_link_impairment
from harness.wait import wait_until

MB = 1_000_000
IFACES = ("eth0", "eth1")  # two-paths: the initial subflow leaves by eth0, the join by eth1


def join_later(topo, pm):
    """Remove the client's "subflow" endpoint; return a function that adds it back."""
    client = topo.ns("client")
    (endpoint,) = [e for e in pm(client).endpoints() if "subflow" in e.flags]
    pm(client).del_endpoint(endpoint.id)
    ifname = topo.interface_of("client", endpoint.addr)
    return lambda: pm(client).add_endpoint(endpoint.addr, flags={"subflow"}, ifname=ifname)


@contextmanager
def set_then_join(topo, pm, set_options, before_join=lambda: None):
    """A two-paths session: data on the initial subflow, all of it acked (so nothing sent
    before the option waits in a queue), set_options(sock), before_join(), then the join.
    """
    add_endpoint = join_later(topo, pm)
    with traffic.session(topo.ns("client"), topo.ns("server"), topo.addresses("server", 4)[0],
                         listen_addr="0.0.0.0") as live:
        live.sender.send(nbytes=64 * 1024)
        traffic.wait_all_acked(live.sock)
        set_options(live.sock)
        before_join()
        add_endpoint()
        wait_subflows(live.sock, 2)
        yield live


def send_and_check(live, nbytes=MB):
    live.sender.send(nbytes=nbytes)
    end = live.sender.finish()
    assert live.sink.result().sha256 == end.sha256


def subflows_seen(sock, ns):
    """The ss view of each subflow of MPTCP socket sock, in namespace ns, initial one first."""
    sockets = tcp_sockets(ns)
    return [sockets[(a.local, a.remote)] for a in subflow_addrs(sock)]


# ---- SO_MARK: nftables counts marked and unmarked TCP packets leaving each interface ----

MARK = 0x2A


def count_marks(ns):
    rules = [f'oifname "{i}" meta l4proto tcp meta mark {op} {MARK:#x} counter '
             f'comment "{i}-{name}"'
             for i in IFACES for op, name in (("==", "marked"), ("!=", "unmarked"))]
    run(["nft", "-f", "-"], ns=ns, input=(
        "table inet mlab_mark {\n  chain output {\n"
        "    type filter hook output priority 0; policy accept;\n    "
        + "\n    ".join(rules) + "\n  }\n}\n"))


def mark_counters(ns):
    """{"eth0-marked": packets, "eth0-unmarked": ..., ...} from the rules' counters."""
    return nft.counters(ns, "mlab_mark", key="comment")


def test_so_mark_marks_the_packets_of_every_subflow(topology, pm):
    """Once SO_MARK is set, every TCP packet leaving either interface carries the mark:
    the initial subflow's (eth0) and the joining one's from its SYN on (eth1)."""
    topo = topology("two-paths")
    client, counted = topo.ns("client"), {}
    count_marks(client)

    def set_mark(sock):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, MARK)
        counted["before"] = mark_counters(client)

    with set_then_join(topo, pm, set_mark) as live:
        read_back = live.sock.getsockopt(socket.SOL_SOCKET, socket.SO_MARK)
        send_and_check(live)
    after = mark_counters(client)
    moved = {name: after[name] - counted["before"][name] for name in after}
    for iface in IFACES:
        assert moved[f"{iface}-marked"] > 0, f"marked packets through {iface}: {moved}"
        assert moved[f"{iface}-unmarked"] == 0, f"unmarked packets through {iface}: {moved}"
    assert read_back == MARK


# ---- IP_TOS: the TOS byte of every segment on the wire ----

TOS = 0x28  # DSCP AF11; the ECN bits stay TCP's own


def test_ip_tos_sets_the_tos_byte_of_every_subflow(topology, pm, capture):
    """After IP_TOS, every segment the client sends through either interface (the join's
    SYN included) carries that TOS; before it, the initial subflow's carried 0."""
    topo = topology("two-paths")
    client, caps = topo.ns("client"), []
    client_addrs = set(topo.addresses("client"))

    def start_capture():
        caps.extend(capture(client, iface) for iface in IFACES)

    def set_tos(sock):
        assert sock.getsockopt(socket.SOL_IP, socket.IP_TOS) == 0
        sock.setsockopt(socket.SOL_IP, socket.IP_TOS, TOS)

    with set_then_join(topo, pm, set_tos, before_join=start_capture) as live:
        read_back = live.sock.getsockopt(socket.SOL_IP, socket.IP_TOS)
        send_and_check(live)
    for iface, cap in zip(IFACES, caps, strict=True):
        cap.stop()
        sent = [s for s in cap.segments() if s.src in client_addrs]
        assert sum(1 for s in sent if s.payload_len) > 20, f"little data through {iface}"
        assert {s.tos & ~0x3 for s in sent} == {TOS}, f"TOS bytes through {iface}"
    assert any(s.is_syn for s in caps[1].segments()), "the join's SYN was not captured"
    assert read_back == TOS


# ---- TCP_CONGESTION: each subflow's congestion control, through sock_diag ----

def test_tcp_congestion_sets_the_algorithm_of_every_subflow(topology, pm):
    """The initial subflow starts with the namespace's default (net.ipv4.tcp_congestion_control:
    cubic on our kernel, CONFIG_DEFAULT_TCP_CONG); after TCP_CONGESTION "reno" on the MPTCP
    socket, both subflows run reno, and the socket reads reno back."""
    topo = topology("two-paths")
    client, seen = topo.ns("client"), {}
    default = sysctl.read("net.ipv4.tcp_congestion_control", client)
    assert default != "reno", "reno is the default: the test would prove nothing"

    def set_reno(sock):
        seen["before"] = [sf.congestion for sf in subflows_seen(sock, client)]
        sock.setsockopt(socket.SOL_TCP, socket.TCP_CONGESTION, b"reno")

    with set_then_join(topo, pm, set_reno) as live:
        live.sender.send(nbytes=MB)
        subflows = subflows_seen(live.sock, client)
        read_back = live.sock.getsockopt(socket.SOL_TCP, socket.TCP_CONGESTION, 16)
        send_and_check(live, nbytes=0)
    assert seen["before"] == [default]
    assert [sf.congestion for sf in subflows] == ["reno", "reno"], subflows
    assert read_back.rstrip(b"\0") == b"reno"


# ---- SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT: probes on the wire ----

KEEPIDLE, KEEPINTVL, KEEPCNT = 1, 2, 2  # seconds, seconds, probes


def set_keepalive(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.SOL_TCP, socket.TCP_KEEPIDLE, KEEPIDLE)
    sock.setsockopt(socket.SOL_TCP, socket.TCP_KEEPINTVL, KEEPINTVL)
    sock.setsockopt(socket.SOL_TCP, socket.TCP_KEEPCNT, KEEPCNT)


NOWHERE = "02:00:00:00:00:01"  # a MAC address that no interface of the topology has
NUD_PERMANENT = 0x80


def deafen(topo) -> None:
    """The client hears nothing from the server any more: its frames to any of the
    server's addresses, out of any of its interfaces (the join reaches the server's first
    address through eth1), go to a MAC address nobody has (permanent neighbour entries),
    so the server never gets its keepalive probes and never answers. Set over rtnetlink
    from this process, it takes effect within milliseconds; nft, a process to start, took
    about a second on the debug kernel, as long as KEEPIDLE, and the first probe was
    answered."""
    with namespaces.rtnetlink(topo.ns("client")) as ipr:
        for iface in IFACES:
            index = ipr.link_lookup(ifname=iface)[0]
            for address in topo.addresses("server"):
                ipr.neigh("replace", dst=address, lladdr=NOWHERE, ifindex=index,
                          state=NUD_PERMANENT)


def probes_and_reset(segments, client_addrs, since, until):
    """Times of the client's empty ACKs (keepalive probes: nothing else is sent by an idle
    subflow that hears nothing) and of its RST, between `since` and `until`."""
    sent = [s for s in segments if s.src in client_addrs and since <= s.time <= until]
    probes = [s.time for s in sent if s.flags == "A" and not s.payload_len]
    resets = [s.time for s in sent if "R" in s.flags]
    return probes, resets


def test_keepalive_probes_every_idle_subflow_at_the_interval(topology, pm, capture, mib):
    """Keepalive set before the join; both subflows idle, then the client hears nothing.
    Each subflow sends KEEPCNT probes, the first KEEPIDLE after the last segment it received,
    then one every KEEPINTVL, and a RST KEEPINTVL after the last unanswered one.

    Measured (gaps between probes, and last probe to RST): host 2.012-2.028 s; VM (TCG, one
    CPU) 2.008-2.039 s; first probe after the last received segment: host 1.000-1.008 s, VM
    1.004-1.025 s. Bounds: 0.1 s early for timer slack (jiffies), 0.5 s late for a busy machine.
    """
    topo = topology("two-paths")
    client, caps = topo.ns("client"), [capture(topo.ns("client"), i) for i in IFACES]
    client_addrs, server_addrs = set(topo.addresses("client")), set(topo.addresses("server"))
    with set_then_join(topo, pm, set_keepalive) as live:
        live.sender.send(nbytes=256 * 1024)
        traffic.wait_all_acked(live.sock)
        # a subflow whose TCP ack trails the DATA_ACK would retransmit, not probe, once deaf
        traffic.wait_subflows_acked(live.sock)
        deaf_since = time.time()
        deafen(topo)
        before = mib(client)  # the RSTs come KEEPIDLE + KEEPCNT * KEEPINTVL later
        wait_until(lambda: before.delta(mib(client), group="Tcp").get("OutRsts", 0) >= 2,
                   KEEPIDLE + (KEEPCNT + 1) * KEEPINTVL + 5, "both subflows to time out")
        timed_out = time.time()  # the connection's close, which the server hears, follows
    for iface, cap in zip(IFACES, caps, strict=True):
        cap.stop()
        segments = cap.segments()
        probes, resets = probes_and_reset(segments, client_addrs, deaf_since, timed_out)
        last_rx = max(s.time for s in segments if s.src in server_addrs and s.time < deaf_since)
        assert len(probes) == KEEPCNT and len(resets) == 1, f"{iface}: {probes} {resets}"
        gaps = [b - a for a, b in zip(probes, probes[1:] + resets, strict=True)]
        print(f"\n{iface}: first probe {probes[0] - last_rx:.3f} s after the last segment "
              f"received; then every {[round(gap, 3) for gap in gaps]} s")
        assert KEEPIDLE - 0.1 <= probes[0] - last_rx <= KEEPIDLE + 0.5, iface
        for gap in gaps:
            assert KEEPINTVL - 0.1 <= gap <= KEEPINTVL + 0.5, f"{iface}: gap {gap:.3f} s"


# ---- SO_BINDTODEVICE ----

def test_so_bindtodevice_binds_the_initial_subflow_and_joins_keep_their_endpoint_device(
        topology, pm):
    """SO_BINDTODEVICE before connect binds the initial subflow (sock_diag reports the
    device). In 6.12 a join the in-kernel PM creates is bound to its endpoint's device
    instead (__mptcp_subflow_connect sets it after copying the socket's options): the join
    from two-paths' endpoint (dev eth1) is bound to eth1, and data flows on both."""
    topo = topology("two-paths")
    client, server = topo.ns("client"), topo.ns("server")

    def bind_eth0(sock):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")

    with traffic.session(client, server, topo.addresses("server", 4)[0], subflows=2,
                         listen_addr="0.0.0.0", before_connect=bind_eth0) as live:
        live.sender.send(nbytes=MB)
        subflows = subflows_seen(live.sock, client)
        read_back = live.sock.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16)
        send_and_check(live, nbytes=0)
    assert [sf.device for sf in subflows] == ["eth0", "eth1"], subflows
    assert read_back.rstrip(b"\0") == b"eth0"


# ---- TCP_NODELAY: Nagle off on every subflow, seen in when the segments leave ----

SMALL_WRITE = 100  # bytes: far below the MSS
BURST, BURSTS = 10, 20  # writes per burst (within the initial window), bursts
BURST_GAP_S = 0.25  # before each burst: all acknowledged, delayed ACKs included
LINK_DELAY_US = 50_000  # each way: a burst is written well within one round trip
RTT_S = 2 * LINK_DELAY_US / 1e6
NO_AUTOCORK = {"net.ipv4.tcp_autocorking": 0}  # only Nagle may hold small writes back


def two_slow_paths():
    """two-paths with LINK_DELAY_US on both links (netem: our kernel)."""
    return with_link_impairment(load_named("two-paths"), delay_us=LINK_DELAY_US)


def burst_spans(segments, starts: list[float]) -> list[float]:
    """For each burst (started at the wall-clock times `starts`) in which a subflow sent
    more than one data segment: seconds from its first to its last one."""
    spans = []
    for begin, end in zip(starts, [*starts[1:], float("inf")], strict=True):
        times = [s.time for s in segments if begin <= s.time < end]
        if len(times) > 1:
            spans.append(max(times) - min(times))
    return spans


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@pytest.mark.parametrize("nodelay", [1, 0], ids=["nodelay", "nagle"])
def test_tcp_nodelay_turns_nagle_off_on_every_subflow(topology, pm, capture, netem, nodelay):
    """Bursts of small writes (BURST writes of SMALL_WRITE bytes, written in much less than
    a round trip of RTT_S) spread over both subflows. With TCP_NODELAY set on the MPTCP
    socket before the join, each subflow sends each write as it comes: a burst's segments
    leave a subflow within the time it took to write them. Without it (the control run),
    Nagle holds the writes that follow a subflow's first small segment until that one is
    acknowledged, a round trip later. (The segments stay one per write either way: writes
    that alternate between subflows have DSS mappings that cannot be merged.) Autocorking
    is off, so that only Nagle can hold data back. Measured in the VM (TCG, 5 runs): bursts
    written in 1-3 ms; median span per subflow 0-3 ms with TCP_NODELAY, 102-107 ms without
    (a round trip is 100 ms). In the control run the scheduler may keep all but a burst's
    first write on the initial subflow (its pacing rate grew with the transfer before the
    join; the held writes grow its queue by their bytes only): Nagle is asserted on the
    subflows that sent several writes of a burst, at least one of them in half the bursts."""
    topo = topology(two_slow_paths(), client=NO_AUTOCORK)
    client, caps, starts, written_in = topo.ns("client"), [], [], []
    client_addrs = set(topo.addresses("client"))

    def set_nodelay(sock):
        sock.setsockopt(socket.SOL_TCP, socket.TCP_NODELAY, nodelay)

    def start_capture():
        caps.extend(capture(client, iface) for iface in IFACES)

    with set_then_join(topo, pm, set_nodelay, before_join=start_capture) as live:
        read_back = live.sock.getsockopt(socket.SOL_TCP, socket.TCP_NODELAY)
        for _ in range(BURSTS):
            time.sleep(BURST_GAP_S)
            starts.append(time.time())
            for _ in range(BURST):
                live.sender.send(nbytes=SMALL_WRITE)
            written_in.append(time.time() - starts[-1])
        send_and_check(live, nbytes=0)
    spans, data_segments = {}, {}
    for iface, cap in zip(IFACES, caps, strict=True):
        cap.stop()
        sent = [s for s in cap.segments() if s.src in client_addrs and s.payload_len]
        spans[iface], data_segments[iface] = burst_spans(sent, starts), len(sent)
    print(f"\nTCP_NODELAY {nodelay}: bursts written in {median(written_in):.3f} s (median); "
          f"data segments per subflow {data_segments}; median span of a burst's segments "
          f"per subflow { {i: round(median(s), 3) for i, s in spans.items() if s} }")
    assert read_back == nodelay
    assert median(written_in) < RTT_S / 2, "the bursts took too long to write: inconclusive"
    if nodelay:
        for iface, seen in spans.items():
            assert len(seen) >= BURSTS / 2, f"{iface} sent several writes in {len(seen)} bursts"
            assert median(seen) < RTT_S / 2, f"writes held back on {iface}: {seen}"
    else:
        assert max(len(seen) for seen in spans.values()) >= BURSTS / 2, \
            f"no subflow sent several writes in half the bursts: {spans}"
        for iface, seen in spans.items():
            assert not seen or median(seen) >= 0.9 * RTT_S, f"Nagle did not hold on {iface}: {seen}"
