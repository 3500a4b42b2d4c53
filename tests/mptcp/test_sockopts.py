"""Socket options that TCP applications set, on MPTCP sockets (kernel_patches/0002-0004).

Each option is set on the MPTCP socket, then checked where the kernel applies it: on the
wire for every subflow (TTL, traffic class, MSS), in each subflow's tcp_info, or by the
behaviour it asks for (SYN retries, the user timeout). "before-join" sets the option while
only the initial subflow exists, then adds the endpoint that makes the second one join:
the joining subflow must inherit it. "after-join" sets it once both subflows carry data.
"""

import errno
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager

import pytest

from harness import nft, traffic
from harness.mptcp.sockets import (
    TCP_ESTABLISHED,
    open_socket,
    subflow_tcp_info,
    wait_subflows,
)
from harness.run import run
from harness.wait import wait_until

MB = 1_000_000
SOL_TCP, SOL_IP, SOL_IPV6 = socket.SOL_TCP, socket.IPPROTO_IP, socket.IPPROTO_IPV6
TTL, TCLASS = 42, 0x28  # DSCP AF11; the ECN bits stay TCP's own
ROUTE_HOP_LIMIT = 33  # neither TTL nor the default (64)
USER_TIMEOUT_MS = 3000
# Since 6.5, a SYN_SENT socket retransmits net.ipv4.tcp_syn_linear_timeouts (4) times more
# than TCP_SYNCNT, every second, and TCP_SYNCNT's time budget ends the attempt first: with
# 0, TCP_SYNCNT=N means exactly N retransmissions, which is what the SYN counts check.
CLASSIC_SYN_RETRIES = {"net.ipv4.tcp_syn_linear_timeouts": 0}


SOCKOPT_PATCH = "mptcp-sockopt-support-TCP_-MAXSEG-SYNCNT-USER_TIMEOU"  # 0002
ETIMEDOUT_PATCH = "mptcp-fail-with-ETIMEDOUT-when-the-user-timeout-expi"  # 0003
IP_PATCH = "mptcp-sockopt-support-IP_TTL-IPV6_UNICAST_HOPS-and-I"  # 0004


def refused_option(level: int, name: int, value: int) -> str | None:
    """On the host: why an MPTCP socket refuses this option (None: it takes it)."""
    family = socket.AF_INET6 if level == SOL_IPV6 else socket.AF_INET
    with open_socket(family=family) as sock:
        try:
            sock.setsockopt(level, name, value)
        except OSError as exc:
            if exc.errno in (errno.ENOPROTOOPT, errno.EOPNOTSUPP):
                return f"setsockopt gives {errno.errorcode[exc.errno]}"
            raise
    return None


@pytest.fixture(autouse=True)
def series_applied(built_with):
    built_with(SOCKOPT_PATCH, lambda: refused_option(SOL_TCP, socket.TCP_USER_TIMEOUT, 1000))


def require_ip_patch(built_with) -> None:
    built_with(IP_PATCH, lambda: refused_option(SOL_IP, socket.IP_TTL, TTL))


@pytest.fixture
def ip_options_patch(built_with):
    require_ip_patch(built_with)


def require_patch_of(built_with, level: int) -> None:
    """IP_* and IPV6_* options come with 0004, TCP_* ones with 0002."""
    if level != SOL_TCP:
        require_ip_patch(built_with)


# ---- set and read back, as on a TCP socket ----

OPTIONS = [  # (family, level, name, value)
    (socket.AF_INET, SOL_TCP, socket.TCP_MAXSEG, 1000),
    (socket.AF_INET, SOL_TCP, socket.TCP_SYNCNT, 3),
    (socket.AF_INET, SOL_TCP, socket.TCP_USER_TIMEOUT, USER_TIMEOUT_MS),
    (socket.AF_INET, SOL_TCP, socket.TCP_WINDOW_CLAMP, 40000),
    (socket.AF_INET, SOL_IP, socket.IP_TTL, TTL),
    (socket.AF_INET6, SOL_IPV6, socket.IPV6_UNICAST_HOPS, TTL),
    (socket.AF_INET6, SOL_IPV6, socket.IPV6_TCLASS, TCLASS),
]
INVALID = [
    (socket.AF_INET, SOL_TCP, socket.TCP_MAXSEG, 10),
    (socket.AF_INET, SOL_TCP, socket.TCP_SYNCNT, 0),
    (socket.AF_INET, SOL_TCP, socket.TCP_USER_TIMEOUT, -1),
    (socket.AF_INET, SOL_IP, socket.IP_TTL, 0),
    (socket.AF_INET6, SOL_IPV6, socket.IPV6_UNICAST_HOPS, 256),
    (socket.AF_INET6, SOL_IPV6, socket.IPV6_TCLASS, 256),
]


def option_id(option) -> str:
    _family, level, name, value = option
    prefix = {SOL_TCP: "TCP_", SOL_IP: "IP_", SOL_IPV6: "IPV6_"}[level]
    label = next(k for k, v in vars(socket).items() if k.startswith(prefix) and v == name)
    return f"{label}={value}"


@pytest.mark.parametrize("option", OPTIONS, ids=option_id)
def test_option_reads_back_as_on_tcp(netns, built_with, option):
    family, level, name, value = option
    require_patch_of(built_with, level)
    with open_socket(netns, family, socket.IPPROTO_TCP) as tcp, open_socket(netns, family) as mp:
        tcp.setsockopt(level, name, value)
        mp.setsockopt(level, name, value)
        assert mp.getsockopt(level, name) == tcp.getsockopt(level, name) == value


@pytest.mark.parametrize("option", INVALID, ids=option_id)
def test_invalid_value_is_refused_as_on_tcp(netns, built_with, option):
    family, level, name, value = option
    require_patch_of(built_with, level)
    with open_socket(netns, family, socket.IPPROTO_TCP) as tcp, open_socket(netns, family) as mp:
        with pytest.raises(OSError) as tcp_error:
            tcp.setsockopt(level, name, value)
        with pytest.raises(OSError) as mptcp_error:
            mp.setsockopt(level, name, value)
    assert mptcp_error.value.errno == tcp_error.value.errno == errno.EINVAL


# TCP takes any non-zero clamp: a small one is raised to SOCK_MIN_RCVBUF / 2, a negative one
# becomes a huge unsigned clamp (no clamp), read back as the same negative int.
ADJUSTED_BY_TCP = [
    (socket.AF_INET, SOL_TCP, socket.TCP_WINDOW_CLAMP, 100),
    (socket.AF_INET, SOL_TCP, socket.TCP_WINDOW_CLAMP, -1),
]


@pytest.mark.parametrize("option", ADJUSTED_BY_TCP, ids=option_id)
def test_value_that_tcp_adjusts_reads_back_as_on_tcp(netns, option):
    family, level, name, value = option
    with open_socket(netns, family, socket.IPPROTO_TCP) as tcp, open_socket(netns, family) as mp:
        tcp.setsockopt(level, name, value)
        mp.setsockopt(level, name, value)
        assert mp.getsockopt(level, name) == tcp.getsockopt(level, name)


def client_window_clamp_once_connected(stack: ExitStack, ns: str, proto: str, clamp: int):
    """getsockopt(TCP_WINDOW_CLAMP) on a loopback client of `proto` that set `clamp` before
    connecting, once the connection is established."""
    listener = stack.enter_context(open_socket(ns, socket.AF_INET, traffic.protocol(proto)))
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = stack.enter_context(traffic.connect(
        ns, "127.0.0.1", listener.getsockname()[1], proto=proto,
        before_connect=lambda sock: sock.setsockopt(SOL_TCP, socket.TCP_WINDOW_CLAMP, clamp)))
    stack.enter_context(listener.accept()[0])
    return client.getsockopt(SOL_TCP, socket.TCP_WINDOW_CLAMP)


def test_window_clamp_reads_back_the_live_value_as_on_tcp(netns):
    """A clamp larger than the receive buffer can hold is cut down to it when the connection
    is established (tcp_init_buffer_space()): TCP reads back the clamp in force, not the one
    it was given; so must MPTCP (its first subflow's)."""
    too_large = 100_000_000
    with ExitStack() as stack:
        read_back = {proto: client_window_clamp_once_connected(stack, netns, proto, too_large)
                     for proto in ("tcp", "mptcp")}
    assert read_back["tcp"] < too_large, f"TCP kept the clamp: inconclusive ({read_back})"
    assert read_back["mptcp"] == read_back["tcp"]


# ---- on every subflow ----

def join_later(topo, pm):
    """Remove the endpoint that makes a second subflow (the client's "subflow" one, or the
    server's "signal" one); return a function that adds it back, for live connections."""
    for host, flag in (("client", "subflow"), ("server", "signal")):
        ns = topo.ns(host)
        found = [e for e in pm(ns).endpoints() if flag in e.flags]
        if found:
            (endpoint,) = found
            pm(ns).del_endpoint(endpoint.id)
            ifname = topo.interface_of(host, endpoint.addr) if flag == "subflow" else None
            return lambda: pm(ns).add_endpoint(endpoint.addr, flags={flag}, ifname=ifname)
    raise AssertionError(f"{topo.name}: no endpoint that makes a second subflow")


@contextmanager
def two_subflows(topo, pm, when, set_option, addr=None, **session_options):
    """A session with two subflows, set_option(sock) called `when` (see the module doc)."""
    client, server = topo.ns("client"), topo.ns("server")
    add_endpoint = join_later(topo, pm) if when == "before-join" else None
    with traffic.session(client, server, addr or topo.addresses("server", 4)[0],
                         subflows=1 if add_endpoint else 2, **session_options) as live:
        if add_endpoint:
            live.sender.send(nbytes=64 * 1024)
            set_option(live.sock)
            add_endpoint()
            wait_subflows(live.sock, 2)
        else:
            set_option(live.sock)
        yield live


def send_captured(live, topo, capture, read_options):
    """Send 2 MB with both client interfaces captured; check every byte arrived. Returns
    the data segments the client sent, per interface (each must have some: one subflow
    each), and what read_options(sock) gave while the connection was up."""
    ifaces, client_addrs = ("eth0", "eth1"), set(topo.addresses("client"))
    caps = [capture(topo.ns("client"), iface) for iface in ifaces]
    live.sender.send(nbytes=2 * MB)
    read_back = read_options(live.sock)
    end = live.sender.finish()
    for cap in caps:
        cap.stop()
    assert live.sink.result().sha256 == end.sha256
    segments = {iface: [s for s in cap.segments() if s.src in client_addrs and s.payload_len]
                for iface, cap in zip(ifaces, caps, strict=True)}
    for iface, sent in segments.items():
        assert sent, f"no data left through {iface}: one subflow went unchecked"
    return segments, read_back


@pytest.mark.parametrize("when", ["before-join", "after-join"])
def test_ip_ttl_applies_to_every_subflow(topology, pm, capture, ip_options_patch, when):
    topo = topology("two-paths")
    with two_subflows(
            topo, pm, when, lambda sock: sock.setsockopt(SOL_IP, socket.IP_TTL, TTL)) as live:
        segments, read_back = send_captured(
            live, topo, capture, lambda sock: sock.getsockopt(SOL_IP, socket.IP_TTL))
    for iface, sent in segments.items():
        assert {s.ttl for s in sent} == {TTL}, f"TTLs seen on {iface}"
    assert read_back == TTL


@pytest.mark.parametrize("when", ["before-join", "after-join"])
def test_ipv6_hop_limit_and_traffic_class_apply_to_every_subflow(topology, pm, capture,
                                                                 ip_options_patch, when):
    topo = topology("dual-stack")  # the server signals its second IPv6 address

    def set_options(sock):
        sock.setsockopt(SOL_IPV6, socket.IPV6_UNICAST_HOPS, TTL)
        sock.setsockopt(SOL_IPV6, socket.IPV6_TCLASS, TCLASS)

    def read_options(sock):
        return (sock.getsockopt(SOL_IPV6, socket.IPV6_UNICAST_HOPS),
                sock.getsockopt(SOL_IPV6, socket.IPV6_TCLASS))

    with two_subflows(topo, pm, when, set_options, addr=topo.addresses("server", 6)[0],
                      listen_addr="::") as live:
        segments, read_back = send_captured(live, topo, capture, read_options)
    for iface, sent in segments.items():
        assert {s.ttl for s in sent} == {TTL}, f"hop limits seen on {iface}"
        assert {s.tos & ~0x3 for s in sent} == {TCLASS}, f"traffic classes on {iface}"
    assert read_back == (TTL, TCLASS)


def test_an_unset_hop_limit_reads_back_as_the_routes_as_on_tcp(topology, ip_options_patch):
    """Without IPV6_UNICAST_HOPS set, a connected TCP socket reads back the hop limit of
    its route (ip6_dst_hoplimit), not the namespace's default: so must an MPTCP one."""
    topo = topology("dual-stack")
    client, server = topo.ns("client"), topo.ns("server")
    addr = topo.addresses("server", 6)[0]
    run(["ip", "-6", "route", "add", f"{addr}/128", "dev", topo.interface("client", 0),
         "hoplimit", str(ROUTE_HOP_LIMIT)], ns=client)
    read_back = {}
    with ExitStack() as stack:
        listener = stack.enter_context(open_socket(server, socket.AF_INET6))
        listener.bind(("::", 0))
        listener.listen(2)
        for proto in ("tcp", "mptcp"):
            sock = stack.enter_context(
                traffic.connect(client, addr, listener.getsockname()[1], proto=proto))
            read_back[proto] = sock.getsockopt(SOL_IPV6, socket.IPV6_UNICAST_HOPS)
    assert read_back == {"tcp": ROUTE_HOP_LIMIT, "mptcp": ROUTE_HOP_LIMIT}


def no_segmentation_offload(ns, ifaces):
    """Capture real segments, not the 64 KB GSO packets TCP hands to a veth."""
    for iface in ifaces:
        run(["ethtool", "-K", iface, "tso", "off", "gso", "off"], ns=ns)


def mss_option(segment) -> int | None:
    return next((int.from_bytes(data, "big") for kind, data in segment.options if kind == 2),
                None)


@pytest.mark.parametrize("when", ["before-connect", "before-join"])
def test_maxseg_caps_the_segments_of_the_subflows_that_connect_after_it(
        topology, pm, capture, when):
    topo = topology("two-paths")
    client, ifaces, maxseg = topo.ns("client"), ("eth0", "eth1"), 1000
    no_segmentation_offload(client, ifaces)
    caps = [capture(client, iface) for iface in ifaces]

    def set_maxseg(sock):
        sock.setsockopt(SOL_TCP, socket.TCP_MAXSEG, maxseg)

    if when == "before-connect":
        scenario = two_subflows(topo, pm, "after-join", lambda sock: None,
                                before_connect=set_maxseg)
    else:
        scenario = two_subflows(topo, pm, "before-join", set_maxseg)
    with scenario as live:
        live.sender.send(nbytes=2 * MB)
        end = live.sender.finish()
        for cap in caps:
            cap.stop()
    assert live.sink.result().sha256 == end.sha256
    capped = ifaces if when == "before-connect" else ("eth1",)  # eth1: the joining subflow
    for iface, cap in zip(ifaces, caps, strict=True):
        syns = [s for s in cap.segments() if s.is_syn]
        data = [s.payload_len for s in cap.segments()
                if s.src in topo.addresses("client") and s.payload_len]
        assert syns and data, f"no SYN or no data through {iface}"
        if iface in capped:
            assert {mss_option(s) for s in syns} == {maxseg}, f"SYN MSS through {iface}"
            assert max(data) <= maxseg, f"a {max(data)}-byte segment left through {iface}"
        else:  # as with TCP, an established subflow keeps the MSS it connected with
            assert max(data) > maxseg, f"the initial subflow's segments through {iface}"


@pytest.mark.parametrize("when", ["before-join", "after-join"])
def test_window_clamp_applies_to_every_subflow(topology, pm, when):
    topo, clamp = topology("two-paths"), 20000
    def set_clamp(sock):
        sock.setsockopt(SOL_TCP, socket.TCP_WINDOW_CLAMP, clamp)

    with two_subflows(topo, pm, when, set_clamp) as live:
        live.sender.send(nbytes=MB)
        subflows = subflow_tcp_info(live.sock)
        read_back = live.sock.getsockopt(SOL_TCP, socket.TCP_WINDOW_CLAMP)
        end = live.sender.finish()
    assert live.sink.result().sha256 == end.sha256
    assert len(subflows) == 2
    for info in subflows:
        assert info.rcv_ssthresh <= clamp, f"a subflow's rcv_ssthresh is {info.rcv_ssthresh}"
    assert read_back == clamp


# ---- the behaviour the option asks for ----

DROP_ALL_INPUT = "  chain input { type filter hook input priority 0; policy drop; }"


def black_hole(ns):
    """Drop every packet that enters namespace ns (nftables; gone with the namespace)."""
    run(["nft", "-f", "-"], ns=ns, input=f"table inet mlab_blackhole {{\n{DROP_ALL_INPUT}\n}}\n")


def set_user_timeout(sock):
    sock.setsockopt(SOL_TCP, socket.TCP_USER_TIMEOUT, USER_TIMEOUT_MS)


def drop_syns_arriving_on(ns, iface):
    run(["nft", "-f", "-"], ns=ns, input=(
        "table inet mlab_nosyn {\n"
        "  chain input { type filter hook input priority 0; policy accept;\n"
        f"    iifname {iface} tcp flags & (syn | ack) == syn drop\n"
        "  }\n"
        "}\n"))


def send_until_error(sock) -> OSError:
    chunk = bytes(64 * 1024)
    while True:
        try:
            sock.sendall(chunk)
        except OSError as exc:
            return exc


@pytest.mark.parametrize("when", ["before-join", "after-join"])
def test_user_timeout_fails_the_connection_with_etimedout(topology, pm, mib, built_with, when):
    built_with(ETIMEDOUT_PATCH, lambda: None)  # on the host, the test itself tells
    topo = topology("two-paths")
    client, server = topo.ns("client"), topo.ns("server")
    with two_subflows(topo, pm, when, set_user_timeout) as live:
        live.sender.send(nbytes=MB)
        subflows = subflow_tcp_info(live.sock)
        assert [t.state for t in subflows].count(1) == 2
        before = mib(client)
        started = time.monotonic()
        black_hole(server)
        holed = time.monotonic()
        error = send_until_error(live.sock)
        failed = time.monotonic()
    print(f"\nTCP_USER_TIMEOUT={USER_TIMEOUT_MS} ms set {when}: {error!r} "
          f"{failed - holed:.2f}-{failed - started:.2f} s after the black hole")
    assert error.errno == errno.ETIMEDOUT, f"the socket failed with {error!r}"
    # A subflow gives up USER_TIMEOUT after the first byte it sent that is still unacked
    # (retrans_stamp): sent before the black hole, but at most about an RTT earlier, since
    # anything older was acked (two RTTs if a fast retransmit was under way; 50 ms for the
    # RTT, queueing at 20 Mbit/s included, to grow past the one measured). The last subflow
    # to give up may be one with nothing in flight, which gets data only when MPTCP
    # reinjects it, on MPTCP's retransmission timer, restarted by the last ACK (up to an RTT
    # after the black hole) and firing at most an RTO later. Then the path manager has
    # USER_TIMEOUT more to bring a subflow back (it caps net.mptcp.close_timeout) before
    # the socket fails. `late`: timer granularity, the MPTCP worker and waking the blocked
    # sender, under software emulation too.
    user_timeout, late = USER_TIMEOUT_MS / 1000, 0.5
    rtt, rto = max(t.rtt for t in subflows) / 1e6, max(t.rto for t in subflows) / 1e6
    earliest = 2 * user_timeout - 2 * rtt - 0.05
    latest = 2 * user_timeout + rtt + rto + late
    # the black hole began between started and holed: each bound gets the benefit of that doubt
    assert failed - started >= earliest, f"ETIMEDOUT {failed - started:.2f} s < {earliest:.2f}"
    assert failed - holed <= latest, f"ETIMEDOUT {failed - holed:.2f} s > {latest:.2f}"
    assert before.delta(mib(client), group="TcpExt").get("TCPAbortOnTimeout") == 2


def test_a_subflow_back_within_the_user_timeout_saves_the_connection(topology, pm, mib,
                                                                      built_with):
    """Both paths die and every subflow gives up by its user timeout; a subflow created
    within the user timeout that follows carries the rest: the connection does not fail.

    The user timeout caps the wait for a new subflow (net.mptcp.close_timeout), it does not
    replace it: the path manager keeps that long to recover the connection. Here the
    client's endpoint is removed and added again once the paths work, which makes the
    in-kernel path manager create a subflow for the live connection.
    """
    built_with(ETIMEDOUT_PATCH, lambda: None)
    topo = topology("two-paths")
    client, server = topo.ns("client"), topo.ns("server")
    with two_subflows(topo, pm, "after-join", set_user_timeout) as live, \
            ThreadPoolExecutor(1) as pool:
        live.sender.send(nbytes=MB)
        before = mib(client)
        with nft.table(server, "mlab_blackhole", DROP_ALL_INPUT):
            sending = pool.submit(live.sender.send, nbytes=2 * MB)
            wait_until(lambda: before.delta(mib(client), group="TcpExt")
                       .get("TCPAbortOnTimeout") == 2,
                       30, "both subflows to give up by their user timeout")
        gave_up = time.monotonic()
        (endpoint,) = [e for e in pm(client).endpoints() if "subflow" in e.flags]
        pm(client).del_endpoint(endpoint.id)
        pm(client).add_endpoint(endpoint.addr, flags={"subflow"},
                                ifname=topo.interface_of("client", endpoint.addr))
        wait_subflows(live.sock, 1, timeout=USER_TIMEOUT_MS / 1000)
        back = time.monotonic() - gave_up
        sending.result(timeout=traffic.SOCKET_TIMEOUT)
        end = live.sender.finish()
    print(f"\na subflow was back {back:.2f} s after the last one gave up")
    assert live.sink.result().sha256 == end.sha256
    assert before.delta(mib(client)).get("MPJoinSynTx") == 1


def read_exactly(sock, nbytes: int) -> int:
    """Read nbytes (or up to EOF); the number of bytes read."""
    got = 0
    while got < nbytes and (chunk := sock.recv(min(65536, nbytes - got))):
        got += len(chunk)
    return got


def test_a_reset_after_one_subflow_timed_out_fails_the_connection_as_a_reset(
        topology, mib, built_with):
    """The peer aborts after one subflow gave up by the user timeout while the other one
    carried on: the application sees ECONNRESET, as it would without the option.

    The initial subflow stays in the MPTCP socket's list once closed (__mptcp_close_ssk
    disconnects msk->first instead of freeing it), and nothing reads the ETIMEDOUT its
    timeout left in sk_err while another subflow was alive. The peer's abort (MP_FASTCLOSE
    on a RST) closes the last subflow: that must end the connection as a reset
    (mptcp_check_fastclose), not with the stale ETIMEDOUT of a path that died earlier.
    """
    built_with(ETIMEDOUT_PATCH, lambda: None)
    topo, total = topology("two-paths"), 4 * MB
    client, server = topo.ns("client"), topo.ns("server")
    addr = topo.addresses("server", 4)[0]
    hole = ('  chain in { type filter hook prerouting priority -300; iifname "eth0" drop; }\n'
            '  chain out { type filter hook output priority -300; oifname "eth0" drop; }')
    with ExitStack() as stack:
        listener = stack.enter_context(open_socket(server, socket.AF_INET))
        listener.bind((addr, 0))
        listener.listen(1)
        listener.settimeout(traffic.SOCKET_TIMEOUT)
        sock = stack.enter_context(traffic.connect(
            client, addr, listener.getsockname()[1], before_connect=set_user_timeout))
        peer = stack.enter_context(listener.accept()[0])
        peer.settimeout(traffic.SOCKET_TIMEOUT)
        sock.sendall(b"x")  # the first data fully establishes the connection: then it joins
        assert peer.recv(1) == b"x"
        wait_subflows(sock, 2)
        before = mib(client)
        received = stack.enter_context(ThreadPoolExecutor(1)).submit(read_exactly, peer, total)
        with nft.table(client, "mlab_hole_eth0", hole):  # the initial subflow's path
            sock.sendall(bytes(total))
            wait_until(lambda: before.delta(mib(client), group="TcpExt")
                       .get("TCPAbortOnTimeout") == 1,
                       30, "the initial subflow to give up by its user timeout")
            assert received.result(timeout=traffic.SOCKET_TIMEOUT) == total
        states = [t.state for t in subflow_tcp_info(sock)]
        assert states.count(TCP_ESTABLISHED) == 1, f"subflow states {states}"
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()  # MP_FASTCLOSE, on a RST of each subflow
        with pytest.raises(OSError) as failure:
            while sock.recv(65536):
                pass
    assert failure.value.errno == errno.ECONNRESET, f"the socket failed with {failure.value!r}"
    assert before.delta(mib(client)).get("MPFastcloseRx") == 1


def test_syncnt_limits_the_syns_of_the_initial_subflow(topology, capture):
    topo = topology("single-path", client=CLASSIC_SYN_RETRIES)
    client, server = topo.ns("client"), topo.ns("server")
    cap = capture(client, topo.interface("client", 0))
    black_hole(server)
    started = time.monotonic()
    with pytest.raises(OSError) as failure:
        traffic.connect(client, topo.addresses("server", 4)[0], 80, before_connect=lambda sock:
                        sock.setsockopt(SOL_TCP, socket.TCP_SYNCNT, 1))
    elapsed = time.monotonic() - started
    cap.stop()
    assert failure.value.errno == errno.ETIMEDOUT, repr(failure.value)
    syns = [s for s in cap.segments() if s.is_syn]
    assert len(syns) == 2, f"{len(syns)} SYNs for TCP_SYNCNT=1 (one SYN, one retry)"
    assert all("MP_CAPABLE" in s.mptcp_subtypes for s in syns)
    assert elapsed < 6, f"connect() failed after {elapsed:.1f} s"


def test_syncnt_limits_the_syns_of_a_joining_subflow(topology, pm, capture):
    topo = topology("two-paths", client=CLASSIC_SYN_RETRIES)
    client, server = topo.ns("client"), topo.ns("server")
    add_endpoint = join_later(topo, pm)
    drop_syns_arriving_on(server, topo.interface_of("server", topo.addresses("server", 4)[1]))
    cap = capture(client, "eth1")
    with traffic.session(client, server, topo.addresses("server", 4)[0]) as live:
        live.sender.send(nbytes=64 * 1024)
        live.sock.setsockopt(SOL_TCP, socket.TCP_SYNCNT, 1)
        started = time.monotonic()
        add_endpoint()
        wait_until(lambda: len(subflow_tcp_info(live.sock)) == 2, 5, "the join to start")
        wait_until(lambda: len(subflow_tcp_info(live.sock)) == 1, 10, "the join to give up")
        elapsed = time.monotonic() - started
        live.sender.send(nbytes=MB)
        end = live.sender.finish()
    cap.stop()
    assert live.sink.result().sha256 == end.sha256
    syns = [s for s in cap.segments() if s.is_syn]
    assert len(syns) == 2, f"{len(syns)} MP_JOIN SYNs for TCP_SYNCNT=1 (one SYN, one retry)"
    assert all("MP_JOIN" in s.mptcp_subtypes for s in syns)
    assert elapsed < 6, f"the join gave up after {elapsed:.1f} s"
