"""Forced MPTCP for unmodified applications: `mptcpize run` (Debian package mptcpize).

mptcpize preloads a library whose socket() turns TCP stream sockets into MPTCP ones, so a
program that knows nothing of MPTCP speaks it. Real programs here: curl fetching a file from
`python3 -m http.server`, and iperf3 (client and server). The server runs under mptcpize too:
MPTCP is used only when both ends speak it; an MPTCP client facing a plain TCP server falls
back to TCP (test_mptcpized_client_against_a_plain_server_falls_back shows it), so a
mptcpized client alone would prove the wrapper, not MPTCP.

The proof is the kernel's: MP_CAPABLE MIB counters at both ends, the MPTCP sockets in the
namespaces' sock_diag dump (`ss -M`, harness.mptcp.diag) while the transfer runs, with the
client's second subflow (topology two-paths: the client's PM joins over its second path) in
their MPTCP_INFO, and the data intact (sha256 of the file curl wrote, bytes at both iperf3
ends).

The binaries come from `invoke setup` (mptcpize, curl, iperf3); the VM runs the host's. A
missing one fails the test with that advice (ToolMissing), it never skips.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

from harness.mptcp import diag
from harness.run import ToolMissing, netns_argv, run
from harness.wait import wait_until

MB = 1 << 20
HTTP_PORT, IPERF_PORT = 8080, 5201  # fresh namespaces: nothing else listens there
FILE_SIZE = 4 * MB
# curl's rate limit: 4 MiB at 2 MiB/s keeps the connection open about 2 s, long enough to see
# it in the sock_diag dump, which is polled every 10 ms
CURL_RATE = "2M"
IPERF_BITRATE = "16M"  # 4 MiB at 16 Mbit/s: about 2 s, for the same reason
# A server listens: measured in the VM (TCG, 1 CPU, host load average 5-8 on 2 cores)
# 1.9-7.2 s for http.server (Python starting over 9p), 0.2-0.3 s for iperf3; on the host
# 0.1-0.2 s. 30 s is four times the worst seen: a slow start passes, a server that never
# listens (or listens without MPTCP) fails in bounded time.
START_TIMEOUT = 30.0
# A client runs to its end: measured in the VM 1.9-3.1 s for curl (rate-limited, see above),
# 2.4-2.9 s for iperf3, on the host 1.5-2.3 s; 30 s is ten times that.
RUN_TIMEOUT = 30.0


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolMissing(name)
    return path


def mptcpized(*argv: str) -> list[str]:
    """argv run under `mptcpize run` (the tools must be installed: ToolMissing otherwise)."""
    require_tool("mptcpize")
    require_tool(argv[0])
    return ["mptcpize", "run", *argv]


@contextmanager
def background(argv: list[str], ns: str, log: Path):
    """argv running in namespace ns, output in `log`; stopped (TERM, then KILL) on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(netns_argv(argv, ns), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def finished(proc: subprocess.Popen, log: Path, timeout: float = RUN_TIMEOUT) -> None:
    """Wait for proc to exit and fail with its output unless it exited 0."""
    try:
        returncode = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{proc.args} still running after {timeout:g} s:\n"
                             f"{log.read_text(errors='replace')}") from None
    assert returncode == 0, f"{proc.args} exited {returncode}:\n{log.read_text(errors='replace')}"


def wait_listener(ns: str, port: int, proc: subprocess.Popen, log: Path,
                  mptcp: bool = True) -> None:
    """Wait until a socket listens on `port` in ns: an MPTCP one (sock_diag), or any (ss)."""

    def listening():
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args} exited {proc.returncode}:\n"
                                 f"{log.read_text(errors='replace')}")
        if mptcp:
            return [c for c in diag.connections(ns, include_listeners=True)
                    if c.state == "LISTEN" and c.local[1] == port]
        return port in tcp_listening_ports(ns)

    kind = "an MPTCP" if mptcp else "a"
    wait_until(listening, START_TIMEOUT, f"{kind} listener on port {port} in {ns}")


def tcp_listening_ports(ns: str) -> set[int]:
    """Ports of the TCP sockets listening in ns (`ss -ltn`)."""
    lines = run(["ss", "-H", "-l", "-t", "-n"], ns=ns).stdout.splitlines()
    return {int(line.split()[3].rpartition(":")[2]) for line in lines}


def watch_connections(ns: str, port: int, proc: subprocess.Popen, until) -> list:
    """Poll the MPTCP sockets of ns connected to `port` while proc runs, until until(seen).

    Returns every snapshot taken (lists of MptcpConnection); fails if proc ended first.
    """
    snapshots = []

    def done():
        current = [c for c in diag.connections(ns) if c.remote[1] == port]
        snapshots.append(current)
        if until(current):
            return True
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args} ended before the MPTCP sockets were seen: "
                                 f"{snapshots[-5:]}")
        return False

    wait_until(done, RUN_TIMEOUT, f"the MPTCP sockets to port {port} in {ns}")
    return snapshots


def served_file(directory: Path) -> str:
    """A FILE_SIZE file of seeded random bytes in `directory`; its sha256."""
    data = random.Random(4).randbytes(FILE_SIZE)
    (directory / "blob").write_bytes(data)
    return hashlib.sha256(data).hexdigest()


@contextmanager
def http_server(server: str, addr: str, tmp_path: Path, mptcp: bool = True):
    """python3 -m http.server on addr:HTTP_PORT serving tmp_path/www (under mptcpize or not)."""
    www = tmp_path / "www"
    www.mkdir()
    # Debian's python3, isolated (-I) and without site (-S): it starts in 2 s under emulation
    # where the project's virtualenv takes 5-7 s (its site-packages read over 9p)
    argv = [require_tool("python3"), "-I", "-S", "-m", "http.server", str(HTTP_PORT),
            "--bind", addr, "--directory", str(www)]
    log = tmp_path / "http.log"
    with background(mptcpized(*argv) if mptcp else argv, server, log) as proc:
        yield www, proc, log


def curl_argv(url: str, out: Path) -> list[str]:
    require_tool("curl")
    return ["curl", "--silent", "--show-error", "--fail", "--noproxy", "*",
            "--limit-rate", CURL_RATE, "--output", str(out), url]


def test_curl_fetches_from_http_server_over_mptcp(topology, mib, tmp_path):
    """The join is seen in MPTCP_INFO (subflows == 1) 0.5-1.4 s after curl starts in the VM
    (under 0.1 s on the host), well within curl's 2 s; bounds: START_TIMEOUT, RUN_TIMEOUT."""
    topo = topology("two-paths")
    client, server = topo.ns("client"), topo.ns("server")
    addr = topo.addresses("server", 4)[0]
    before_client, before_server = mib(client), mib(server)
    out = tmp_path / "fetched"
    with http_server(server, addr, tmp_path) as (www, server_proc, server_log):
        sha256 = served_file(www)
        wait_listener(server, HTTP_PORT, server_proc, server_log)
        log = tmp_path / "curl.log"
        argv = mptcpized(*curl_argv(f"http://{addr}:{HTTP_PORT}/blob", out))
        with background(argv, client, log) as curl:
            seen = watch_connections(client, HTTP_PORT, curl,
                                     lambda conns: any(c.info and c.info.subflows == 1
                                                       for c in conns))
            finished(curl, log)
    conn = next(c for c in seen[-1] if c.info and c.info.subflows == 1)
    assert (conn.state, conn.remote) == ("ESTAB", (addr, HTTP_PORT)), conn
    assert hashlib.sha256(out.read_bytes()).hexdigest() == sha256, "curl wrote other bytes"
    assert_mp_capable(before_client.delta(mib(client)), before_server.delta(mib(server)),
                      connections=1)
    assert before_server.delta(mib(server)).get("MPJoinAckRx") == 1


def assert_mp_capable(client_moved: dict, server_moved: dict, connections: int) -> None:
    """MP_CAPABLE went all the way for `connections` connections, and nothing fell back."""
    for name in ("MPCapableSYNTX", "MPCapableSYNACKRX"):
        assert client_moved.get(name) == connections, (name, client_moved)
    for name in ("MPCapableSYNRX", "MPCapableACKRX"):
        assert server_moved.get(name) == connections, (name, server_moved)
    fallbacks = {k: v for k, v in {**client_moved, **server_moved}.items() if "Fallback" in k}
    assert not fallbacks, fallbacks


def test_mptcpized_client_against_a_plain_server_falls_back(topology, mib, tmp_path):
    """Why the server is mptcpized too: facing a plain TCP server, curl's MP_CAPABLE SYN is
    answered without MP_CAPABLE and the connection falls back to TCP, intact."""
    topo = topology("two-paths")
    client, server = topo.ns("client"), topo.ns("server")
    addr = topo.addresses("server", 4)[0]
    before_client, before_server = mib(client), mib(server)
    out = tmp_path / "fetched"
    with http_server(server, addr, tmp_path, mptcp=False) as (www, server_proc, server_log):
        sha256 = served_file(www)
        wait_listener(server, HTTP_PORT, server_proc, server_log, mptcp=False)
        log = tmp_path / "curl.log"
        argv = mptcpized(*curl_argv(f"http://{addr}:{HTTP_PORT}/blob", out))
        with background(argv, client, log) as curl:
            finished(curl, log)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == sha256
    client_moved = before_client.delta(mib(client))
    assert client_moved.get("MPCapableSYNTX") == 1, client_moved  # curl did try MPTCP ...
    assert client_moved.get("MPCapableFallbackSYNACK") == 1, client_moved  # ... and fell back
    assert "MPCapableSYNACKRX" not in client_moved and "MPJoinSynTx" not in client_moved
    assert "MPCapableSYNRX" not in before_server.delta(mib(server))


def iperf3_bytes(report: dict) -> tuple[int, int]:
    """(bytes the client sent, bytes the server received) from iperf3's JSON report."""
    end = report["end"]
    return end["sum_sent"]["bytes"], end["sum_received"]["bytes"]


def data_moving(conns: list) -> bool:
    """Both iperf3 connections are up and the data one had over 1 MiB acked (MPTCP_INFO)."""
    return len(conns) >= 2 and any(c.info and c.info.bytes_acked > MB for c in conns)


def test_iperf3_client_and_server_run_over_mptcp(topology, mib, tmp_path):
    """iperf3 opens a control connection and a data connection: both MPTCP, both seen in the
    client's sock_diag dump together, the data one with over 1 MiB acked after 0.7-1.1 s in
    the VM (0.5 s on the host). Bounds: START_TIMEOUT, RUN_TIMEOUT."""
    topo = topology("two-paths")
    client, server = topo.ns("client"), topo.ns("server")
    addr = topo.addresses("server", 4)[0]
    before_client, before_server = mib(client), mib(server)
    server_log, client_log = tmp_path / "iperf3-server.log", tmp_path / "iperf3-client.json"
    server_argv = mptcpized("iperf3", "--server", "--one-off", "--bind", addr,
                            "--port", str(IPERF_PORT))
    client_argv = mptcpized("iperf3", "--client", addr, "--port", str(IPERF_PORT), "--json",
                            "--bytes", str(FILE_SIZE), "--bitrate", IPERF_BITRATE)
    with background(server_argv, server, server_log) as iperf_server:
        wait_listener(server, IPERF_PORT, iperf_server, server_log)
        with background(client_argv, client, client_log) as iperf_client:
            seen = watch_connections(client, IPERF_PORT, iperf_client, data_moving)
            finished(iperf_client, client_log)
        finished(iperf_server, server_log)
    assert all(c.state == "ESTAB" and c.info is not None for c in seen[-1]), seen[-1]
    sent, received = iperf3_bytes(json.loads(client_log.read_text()))
    # the server stops counting when the client's TEST_END arrives on the control connection,
    # which may overtake the last data (iperf3's way, TCP or not): a lower bound only
    assert sent == FILE_SIZE and FILE_SIZE // 2 < received <= sent, (sent, received)
    assert_mp_capable(before_client.delta(mib(client)), before_server.delta(mib(server)),
                      connections=2)
