"""Move bytes between namespaces over MPTCP or TCP and verify every one of them.

A `Sink` listens in one namespace and hashes (sha256) everything it receives; a `Sender`
sends seeded pseudo-random data from another namespace, hashed on the way out, then
half-closes and waits for the sink to close. `session()` sets both up (waiting for joins if
asked) for tests that act between sends; `transfer()` is a session and one send. Each end
comes back as a TransferEnd: bytes, hash, time, and the kernel's view of its socket
(MPTCP_INFO, MPTCP_TCPINFO, MPTCP_SUBFLOW_ADDRS), so a test can assert that the data arrived
intact and how the subflows carried it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import ipaddress
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.mptcp.constants import IPPROTO_MPTCP
from harness.mptcp.sockets import (
    is_mptcp,
    mptcp_info,
    open_socket,
    subflow_addrs,
    subflow_tcp_info,
    unacked_bytes,
    wait_subflows,
)
from harness.mptcp.structs import MptcpInfo, SubflowAddrs, TcpInfo
from harness.wait import wait_until

CHUNK = 64 * 1024
PACED_CHUNK = 8 * 1024  # a paced sender writes small chunks, so its data leaves evenly
SOCKET_TIMEOUT = 60.0
PROTOCOLS = {"mptcp": IPPROTO_MPTCP, "tcp": socket.IPPROTO_TCP}


class TrafficError(HarnessError):
    pass


def family_of(addr: str) -> int:
    return socket.AF_INET6 if ipaddress.ip_address(addr).version == 6 else socket.AF_INET


def protocol(name: str) -> int:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise TrafficError(f"unknown protocol {name!r}: use one of {sorted(PROTOCOLS)}") from None


@dataclass(frozen=True)
class TransferEnd:
    """What one end of a transfer saw of its own socket."""

    nbytes: int
    sha256: str
    seconds: float
    is_mptcp: bool
    info: MptcpInfo | None  # MPTCP_INFO at the end of data; None for TCP or after fallback
    subflows: tuple[TcpInfo, ...]  # MPTCP_TCPINFO at the same moment; empty without MPTCP
    addrs: tuple[SubflowAddrs, ...]  # MPTCP_SUBFLOW_ADDRS, in the same (kernel list) order

    @property
    def mbit_per_s(self) -> float:
        return self.nbytes * 8 / self.seconds / 1e6 if self.seconds else 0.0


@dataclass(frozen=True)
class Transfer:
    sent: TransferEnd
    received: TransferEnd

    @property
    def intact(self) -> bool:
        return (self.sent.nbytes == self.received.nbytes
                and self.sent.sha256 == self.received.sha256)


def _kernel_view(sock: socket.socket, proto: int) -> tuple:
    """(TCP_IS_MPTCP, MPTCP_INFO, MPTCP_TCPINFO, MPTCP_SUBFLOW_ADDRS) of a socket.

    There is no MPTCP view of a TCP socket nor of an MPTCP one that fell back.

    After a fallback the kernel hands SOL_MPTCP options to the TCP subflow, which answers
    EOPNOTSUPP (net/mptcp/sockopt.c); that is reported as info=None, not as an error.
    """
    if proto != IPPROTO_MPTCP or not is_mptcp(sock):
        return False, None, (), ()
    try:
        return (True, mptcp_info(sock), tuple(subflow_tcp_info(sock)),
                tuple(subflow_addrs(sock)))
    except OSError as exc:
        if exc.errno != errno.EOPNOTSUPP:
            raise
        return False, None, (), ()


def wait_all_acked(sock: socket.socket, timeout: float = SOCKET_TIMEOUT) -> None:
    """Wait until the peer acknowledged at the MPTCP level every byte written so far.

    Written, not sent: MPTCP_INFO's bytes_sent leaves out what still waits in the socket's
    write queue for a subflow, so `bytes_acked >= bytes_sent` can hold with data unsent.
    """
    wait_until(lambda: unacked_bytes(sock) == 0, timeout,
               "the peer to acknowledge every byte written")


def wait_subflows_acked(sock: socket.socket, timeout: float = SOCKET_TIMEOUT) -> None:
    """Wait until no subflow has a segment in flight (TCP-level acks can trail the DATA_ACK).

    A byte sent on one subflow and acknowledged at the MPTCP level through another still
    waits for its own TCP ack; until then that subflow's counters keep moving.
    """

    def idle() -> bool:
        return all(tcp.unacked == 0 for tcp in subflow_tcp_info(sock))

    wait_until(idle, timeout, "every subflow to have its segments acknowledged")


class Sink:
    """A server in namespace ns that accepts one connection and hashes all it receives.

    Use as a context manager; `result()` waits for the connection to end and returns the
    receiving TransferEnd. Leaving the block shuts the sockets down, so no thread outlives it.
    """

    def __init__(self, ns: str | None, addr: str, port: int = 0, proto: str = "mptcp"):
        self.proto = protocol(proto)
        self._listener = open_socket(ns, family_of(addr), self.proto)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.settimeout(SOCKET_TIMEOUT)
            self._listener.bind((addr, port))
            self._listener.listen(1)
        except BaseException:
            self._listener.close()
            raise
        self.addr, self.port = addr, self._listener.getsockname()[1]
        self._conn: socket.socket | None = None
        self._result: TransferEnd | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name=f"sink:{self.port}", daemon=True)

    def __enter__(self) -> Sink:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for sock in (self._conn, self._listener):
            if sock is not None:
                _shutdown_quietly(sock)
        self._thread.join(timeout=10)
        self._listener.close()

    def _serve(self) -> None:
        try:
            self._conn, _peer = self._listener.accept()
            self._conn.settimeout(SOCKET_TIMEOUT)
            self._result = self._receive(self._conn)
        except BaseException as exc:  # reported to the caller by result()
            self._error = exc
        finally:
            if self._conn is not None:
                self._conn.close()

    def _receive(self, conn: socket.socket) -> TransferEnd:
        digest, nbytes = hashlib.sha256(), 0
        start = time.monotonic()
        buf = bytearray(CHUNK)
        while (n := conn.recv_into(buf)) > 0:
            digest.update(memoryview(buf)[:n])
            nbytes += n
        seconds = time.monotonic() - start
        view = _kernel_view(conn, self.proto)
        return TransferEnd(nbytes, digest.hexdigest(), seconds, *view)

    def result(self, timeout: float = SOCKET_TIMEOUT) -> TransferEnd:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TrafficError(f"sink on port {self.port} still receiving after {timeout:g} s")
        if self._error is not None:
            raise TrafficError(f"sink on port {self.port} failed: {self._error!r}") from self._error
        assert self._result is not None
        return self._result


def _shutdown_quietly(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def connect(ns: str | None, addr: str, port: int, proto: str = "mptcp",
            bind: str | None = None, family: int | None = None,
            before_connect: Callable[[socket.socket], None] | None = None) -> socket.socket:
    """A connected socket from namespace ns to (addr, port), optionally bound to `bind`.

    before_connect(sock) runs on the new socket before bind and connect (socket options).
    """
    sock = open_socket(ns, family or family_of(addr), protocol(proto))
    try:
        sock.settimeout(SOCKET_TIMEOUT)
        if before_connect is not None:
            before_connect(sock)
        if bind is not None:
            sock.bind((bind, 0))
        sock.connect((addr, port))
    except BaseException:
        sock.close()
        raise
    return sock


class Sender:
    """Sends seeded pseudo-random data on a connected socket and hashes all of it.

    send() may be called several times (e.g. before and after a path change); finish()
    describes the socket once everything is acked, half-closes and waits for the peer.
    """

    def __init__(self, sock: socket.socket, proto: str = "mptcp", seed: int = 0):
        self.sock, self.proto = sock, protocol(proto)
        self._rng, self._digest = random.Random(seed), hashlib.sha256()
        self.nbytes, self.seconds = 0, 0.0

    def send(self, nbytes: int | None = None, seconds: float | None = None,
             on_progress: Callable[[int], None] | None = None,
             rate_bit: int | None = None, until: threading.Event | None = None) -> int:
        """Send nbytes (or for `seconds`, or until the event `until` is set, from another
        thread); on_progress(total sent) runs after every chunk.

        rate_bit paces the application: PACED_CHUNK writes, none ahead of that many bits per
        second since the start of this call (as fast as the socket takes them without it).
        """
        if sum(limit is not None for limit in (nbytes, seconds, until)) != 1:
            raise TrafficError("give exactly one of nbytes, seconds or until")
        start, sent = time.monotonic(), 0
        deadline = start + seconds if seconds is not None else None
        size = CHUNK if rate_bit is None else PACED_CHUNK
        while ((nbytes is None or sent < nbytes)
               and (deadline is None or time.monotonic() < deadline)
               and (until is None or not until.is_set())):
            chunk = self._rng.randbytes(size if nbytes is None else min(size, nbytes - sent))
            self.sock.sendall(chunk)
            self._digest.update(chunk)
            sent += len(chunk)
            self.nbytes += len(chunk)
            if on_progress is not None:
                on_progress(self.nbytes)
            if rate_bit is not None:
                _sleep_until(start + sent * 8 / rate_bit)
        self.seconds += time.monotonic() - start
        return sent

    def finish(self) -> TransferEnd:
        """Describe the socket once all data is acked, then half-close and wait for the peer.

        The kernel view is taken before the close starts tearing subflows down, so it shows
        every subflow that carried data.
        """
        view = _kernel_view(self.sock, self.proto)
        if view[0]:
            wait_all_acked(self.sock)
            view = _kernel_view(self.sock, self.proto)
        self.sock.shutdown(socket.SHUT_WR)
        while self.sock.recv(CHUNK):
            pass
        return TransferEnd(self.nbytes, self._digest.hexdigest(), self.seconds, *view)


def _sleep_until(moment: float) -> None:
    """Pacing, not waiting for a condition: a sleep is what it takes."""
    time.sleep(max(0.0, moment - time.monotonic()))


@dataclass(frozen=True)
class Session:
    """A live connection from `session()`: the sink, the client socket and its Sender."""

    sink: Sink
    sock: socket.socket
    sender: Sender


@contextmanager
def session(client_ns: str | None, server_ns: str | None, server_addr: str,
            proto: str = "mptcp", server_proto: str | None = None, bind: str | None = None,
            listen_addr: str | None = None, family: int | None = None,
            subflows: int = 1,
            before_connect: Callable[[socket.socket], None] | None = None) -> Iterator[Session]:
    """A connection to a fresh sink, for tests that act on it between sends.

    proto is the client's protocol, server_proto the server's (default: the same), so that an
    MPTCP client against a plain TCP server tests fallback. listen_addr is where the sink binds
    (default server_addr; "::" or "0.0.0.0" to accept joins on every address). With subflows=N
    a first chunk is sent (the client's PM acts only once data made the connection fully
    established) and the session starts when N subflows are established. before_connect(sock)
    runs on the client socket before it connects.
    """
    with Sink(server_ns, listen_addr or server_addr, proto=server_proto or proto) as sink, \
            connect(client_ns, server_addr, sink.port, proto, bind=bind, family=family,
                    before_connect=before_connect) as sock:
        sender = Sender(sock, proto)
        if subflows > 1:
            sender.send(nbytes=CHUNK)
            wait_subflows(sock, subflows)
        yield Session(sink, sock, sender)


def transfer(client_ns: str | None, server_ns: str | None, server_addr: str,
             nbytes: int | None = None, seconds: float | None = None,
             on_connected: Callable[[socket.socket], None] | None = None,
             on_progress: Callable[[int], None] | None = None, rate_bit: int | None = None,
             **options) -> Transfer:
    """One verified transfer of nbytes (or for `seconds`) over a new `session(**options)`.

    on_connected(sock) runs once the session is up; on_progress(bytes sent) after each chunk;
    rate_bit paces the sending application (Sender.send).
    """
    with session(client_ns, server_ns, server_addr, **options) as live:
        if on_connected is not None:
            on_connected(live.sock)
        remaining = max(0, nbytes - live.sender.nbytes) if nbytes is not None else None
        live.sender.send(remaining, seconds, on_progress=on_progress, rate_bit=rate_bit)
        client = live.sender.finish()
        return Transfer(client, live.sink.result())
