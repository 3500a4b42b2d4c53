"""net.mptcp.* sysctls of 6.12 (Documentation/networking/mptcp-sysctl.rst), each by its effect.

Covered elsewhere: `enabled` (test_optin.py: ENOPROTOOPT, per namespace), the client side
of `pm_type` (test_userspace_pm.py: no join without a command), the checksum flag in the
handshake (test_options.py), `scheduler` with our series' schedulers (test_schedulers.py),
`syn_retrans_before_tcp_fallback` (ours, test_syn_fallback_sysctl.py); `blackhole_timeout`
has its own tests. Not covered: `stale_loss_cnt` (no reliable scenario yet).
"""

import errno
import os
import socket
import time

import pytest

from harness import nft, sysctl, traffic
from harness.capture import TCPOPT_MPTCP
from harness.mptcp import diag
from harness.mptcp.sockets import subflow_tcp_info, wait_subflows
from harness.netns import entered
from harness.run import run
from harness.wait import wait_until

MB = 1_000_000


def mptcp_options(segment, subtype):
    """The data (after kind and length) of the segment's MPTCP options of that subtype."""
    return [data for kind, data in segment.options
            if kind == TCPOPT_MPTCP and data and data[0] >> 4 == subtype]


MP_CAPABLE, MP_JOIN, DSS, ADD_ADDR = 0, 1, 2, 3


def nft_table(ns, name, chain, rules):
    """A filter table `name` in ns with one chain on hook `chain` (gone with the namespace)."""
    run(["nft", "-f", "-"], ns=ns, input=(
        f"table inet {name} {{\n  chain {chain} {{\n"
        f"    type filter hook {chain} priority 0; policy accept;\n"
        + "".join(f"    {rule}\n" for rule in rules) + "  }\n}\n"))


# ---- add_addr_timeout ----

ADD_ADDR_TIMEOUT = 1  # seconds
ADD_ADDR_RETRANS_MAX = 3  # net/mptcp/pm_kernel.c
# 6.12 retransmits every add_addr_timeout; later kernels (the 6.18 CI host) start from the
# subflow's RTO, doubling, with add_addr_timeout as the cap
FIXED_INTERVAL = os.uname().release.startswith("6.12.")


def test_add_addr_timeout_is_the_interval_of_unechoed_add_addr_retransmissions(topology,
                                                                              capture):
    """The server announces its second address; the client's echoes are dropped (nftables on
    its output), so the server sends the ADD_ADDR again every add_addr_timeout, 3 times
    (ADD_ADDR_RETRANS_MAX), then gives up: 4 ADD_ADDRs on the wire, 1 s apart (default 120).

    Measured intervals in the VM (6.12, TCG, one CPU): 1.004-1.135 s over 2 runs. Bounds:
    0.1 s early (jiffies), 0.5 s late (a busy machine, the MPTCP worker sending the ACK).
    The 6.18 host starts from the RTO instead (0.21, 0.43, 0.83 s): only the cap holds there.
    """
    topo = topology("server-signals", server={"net.mptcp.add_addr_timeout": ADD_ADDR_TIMEOUT})
    client, server = topo.ns("client"), topo.ns("server")
    nft_table(client, "mlab_noecho", "output",
              ["tcp option mptcp subtype 3 counter drop"])  # the client announces nothing
    cap = capture(server, topo.interface("server", 0))
    with traffic.session(client, server, topo.addresses("server", 4)[0]) as live:
        live.sender.send(nbytes=64 * 1024)
        wait_until(lambda: len(announces(cap, topo)) > ADD_ADDR_RETRANS_MAX,
                   (ADD_ADDR_RETRANS_MAX + 3) * ADD_ADDR_TIMEOUT, "the ADD_ADDR retransmissions")
        time.sleep(2 * ADD_ADDR_TIMEOUT)  # a window to see there is no fifth one
        end = live.sender.finish()
    assert live.sink.result().sha256 == end.sha256
    cap.stop()
    sent = announces(cap, topo)
    gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
    print(f"\nADD_ADDR every {[round(g, 3) for g in gaps]} s")
    assert len(sent) == 1 + ADD_ADDR_RETRANS_MAX, f"{len(sent)} ADD_ADDRs"
    for gap in gaps:  # later kernels start from the RTO, and the sysctl only caps it
        assert gap <= ADD_ADDR_TIMEOUT + 0.5, f"gap {gap:.3f} s"
        assert gap >= ADD_ADDR_TIMEOUT - 0.1 or not FIXED_INTERVAL, f"gap {gap:.3f} s"
    assert echoes_dropped(client) >= 1, "the client never echoed: nothing was tested"


def announces(cap, topo):
    """Times of the server's ADD_ADDRs of its second address (echo flag clear) so far."""
    second = topo.addresses("server", 4)[1]
    return [s.time for s in cap.segments() if s.src in topo.addresses("server")
            for data in mptcp_options(s, ADD_ADDR)
            if not data[0] & 0x01 and socket.inet_ntoa(data[2:6]) == second]


def echoes_dropped(ns):
    return nft.counted_packets(ns, "mlab_noecho")


# ---- allow_join_initial_addr_port ----

MPTCP_CAP_DENY_JOIN_ID0 = 0x20  # the C flag of MP_CAPABLE


@pytest.mark.parametrize("allow", [1, 0])
def test_allow_join_initial_addr_port_sets_the_c_flag_and_decides_the_join(topology, capture,
                                                                            mib, allow):
    """The server's SYN-ACK carries MP_CAPABLE's C flag exactly when the sysctl is 0; the
    client's endpoint (two-paths) would join the server's initial address: with 1 it does,
    with 0 no MP_JOIN SYN leaves the client and the server sees none, over a 1 MB transfer
    (the in-kernel PM joins within milliseconds of full establishment)."""
    topo = topology("two-paths", server={"net.mptcp.allow_join_initial_addr_port": allow})
    client, server = topo.ns("client"), topo.ns("server")
    caps = [capture(client, iface) for iface in ("eth0", "eth1")]
    before = mib(server)
    with traffic.session(client, server, topo.addresses("server", 4)[0],
                         listen_addr="0.0.0.0") as live:
        live.sender.send(nbytes=MB)
        if allow:
            wait_subflows(live.sock, 2)
        end = live.sender.finish()
    assert live.sink.result().sha256 == end.sha256
    for cap in caps:
        cap.stop()
    synack = next(s for s in caps[0].segments() if s.flags == "SA")
    (mp_capable,) = mptcp_options(synack, MP_CAPABLE)
    assert bool(mp_capable[1] & MPTCP_CAP_DENY_JOIN_ID0) == (not allow), mp_capable.hex()
    join_syns = [s for s in caps[1].segments() if s.is_syn and mptcp_options(s, MP_JOIN)]
    joins_received = before.delta(mib(server)).get("MPJoinSynRx", 0)
    assert (len(join_syns), joins_received, end.info.subflows_total) == \
        ((1, 1, 2) if allow else (0, 0, 1))


# ---- close_timeout ----

CLOSE_TIMEOUT = 2  # seconds (default 60)


def test_close_timeout_closes_a_connection_left_without_subflows(topology):
    """The application keeps its socket open; the only subflow dies (keepalive: 1 s idle, one
    unanswered probe 1 s later, the client hearing nothing). The MPTCP socket stays
    established without subflows (the PM could still make one) for close_timeout, then
    moves to CLOSE, as sock_diag reports, and the application's recv() returns.

    Measured (subflow closed to MPTCP socket closed, polled every 50 ms): host 2.017-2.025 s;
    VM (TCG) 2.021-2.078 s. Bounds: 0.15 s early (jiffies and the poll), 1 s late (the
    expiry runs in the MPTCP worker, scheduled from a timer, on a busy machine); the default
    is 60 s.
    """
    topo = topology("single-path", client={"net.mptcp.close_timeout": CLOSE_TIMEOUT})
    client, server = topo.ns("client"), topo.ns("server")
    with traffic.session(client, server, topo.addresses("server", 4)[0]) as live:
        live.sender.send(nbytes=64 * 1024)
        traffic.wait_all_acked(live.sock)
        for name, value in ((socket.TCP_KEEPIDLE, 1), (socket.TCP_KEEPINTVL, 1),
                            (socket.TCP_KEEPCNT, 1)):
            live.sock.setsockopt(socket.SOL_TCP, name, value)
        live.sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        nft_table(client, "mlab_deaf", "input", ["meta l4proto tcp drop"])
        local = live.sock.getsockname()
        subflow_closed = wait_until(lambda: subflow_closed_at(live.sock), 10,
                                    "the subflow to time out")
        assert state_of(client, local) == "ESTAB"
        closed = wait_until(lambda: state_of(client, local) != "ESTAB" and time.monotonic(),
                            CLOSE_TIMEOUT + 5, "the MPTCP socket to leave ESTABLISHED")
        live.sock.settimeout(5)
        outcome = recv_outcome(live.sock)
    print(f"\nclosed {closed - subflow_closed:.3f} s after its last subflow; recv: {outcome}")
    assert CLOSE_TIMEOUT - 0.15 <= closed - subflow_closed <= CLOSE_TIMEOUT + 1.0
    assert outcome in ("eof", errno.ECONNRESET, errno.ENOTCONN), outcome


def subflow_closed_at(sock):
    """The time at which the first subflow is seen in TCP_CLOSE (None: not yet)."""
    return time.monotonic() if [t.state for t in subflow_tcp_info(sock)] == [TCP_CLOSE] else None


TCP_CLOSE = 7


def state_of(ns, local):
    found = [c.state for c in diag.connections(ns) if c.local == tuple(local)]
    return found[0] if found else None


def recv_outcome(sock):
    try:
        return "eof" if sock.recv(1) == b"" else "data"
    except OSError as exc:
        return exc.errno


# ---- checksum_enabled ----

@pytest.mark.parametrize("enabled", [1, 0])
def test_checksum_enabled_puts_a_checksum_in_every_dss_mapping(topology, capture, enabled):
    """Every DSS option with a mapping (M flag) the client sends carries the 2-byte checksum
    after the data-level length when checksum_enabled is 1 on both hosts, none when 0."""
    knobs = {"net.mptcp.checksum_enabled": enabled}
    topo = topology("single-path", client=knobs, server=knobs)
    client = topo.ns("client")
    cap = capture(client, "eth0")
    result = traffic.transfer(client, topo.ns("server"), topo.addresses("server", 4)[0],
                              nbytes=MB)
    cap.stop()
    assert result.intact
    mappings = [dss for s in cap.segments() if s.src in topo.addresses("client")
                for dss in mptcp_options(s, DSS) if dss[1] & 0x04]
    assert len(mappings) > 10, f"{len(mappings)} DSS mappings captured"
    checksums = {has_checksum(dss) for dss in mappings}
    assert checksums == {bool(enabled)}, f"checksum present: {checksums}"


def has_checksum(dss):
    """RFC 8684 3.3: flags byte, data ACK (A: 4 or 8 bytes, a: 8), mapping (M: DSN 4 or 8,
    m: 8; subflow sequence 4; data-level length 2), then the checksum (2) if negotiated."""
    flags = dss[1]
    length = 2
    if flags & 0x01:
        length += 8 if flags & 0x02 else 4
    length += (8 if flags & 0x08 else 4) + 4 + 2
    assert len(dss) in (length, length + 2), f"DSS of {len(dss)} bytes: {dss.hex()}"
    return len(dss) == length + 2


# ---- pm_type ----

@pytest.mark.parametrize("pm_type", [0, 1])
def test_pm_type_userspace_ignores_the_in_kernel_signal_endpoint(topology, capture, pm_type):
    """server-signals: the server's in-kernel PM announces its "signal" endpoint. With
    pm_type=1 on the server (userspace PM) that endpoint is ignored: no ADD_ADDR on the wire,
    no second subflow; with 0 the ADD_ADDR goes out and the client joins. (The client side,
    no join from a "subflow" endpoint, is in test_userspace_pm.py.)"""
    topo = topology("server-signals", server={"net.mptcp.pm_type": pm_type})
    client, server = topo.ns("client"), topo.ns("server")
    cap = capture(client, "eth0")
    with traffic.session(client, server, topo.addresses("server", 4)[0],
                         listen_addr="0.0.0.0") as live:
        live.sender.send(nbytes=MB)
        if pm_type == 0:
            wait_subflows(live.sock, 2)
        end = live.sender.finish()
    cap.stop()
    assert live.sink.result().sha256 == end.sha256
    add_addrs = [s for s in cap.segments() if mptcp_options(s, ADD_ADDR)]
    assert (bool(add_addrs), end.info.subflows_total) == ((True, 2) if pm_type == 0
                                                          else (False, 1))


# ---- scheduler ----

def test_scheduler_default_is_the_only_upstream_one_and_unknown_names_fail(netns):
    """"default" is available and selected; writing a name no scheduler has fails with
    ENOENT (mptcp_set_scheduler finds no such scheduler) and leaves the setting as it was;
    a connection made afterwards in that namespace works."""
    assert "default" in sysctl.read("net.mptcp.available_schedulers", netns).split()
    assert sysctl.read("net.mptcp.scheduler", netns) == "default"
    with entered(netns), pytest.raises(OSError) as refused:
        sysctl.sysctl_path("net.mptcp.scheduler").write_text("no-such-scheduler\n")
    assert refused.value.errno == errno.ENOENT, repr(refused.value)
    assert sysctl.read("net.mptcp.scheduler", netns) == "default"
    result = traffic.transfer(netns, netns, "127.0.0.1", nbytes=MB)
    assert result.intact and result.sent.is_mptcp
