"""Established TCP sockets of a namespace, subflows included, as `ss -tinO` reports them.

sock_diag gives per TCP socket what getsockopt cannot reach on a subflow: its congestion
control (INET_DIAG_CONG), its ULP ("mptcp" on every subflow, INET_DIAG_ULP_INFO) and the
device it is bound to (idiag_if). `ss -tinHO` prints one line per socket: receive and send
queues, local and peer "addr[%dev]:port", then the tcp_info fields, among them the bare
congestion control name and, for a ULP, "tcp-ulp-<name>" followed by the ULP's fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.run import run

ULP_PREFIX = "tcp-ulp-"
# bare words ss prints before the congestion control name (tcp_show_info in iproute2's ss.c)
_FLAG_WORDS = {"ts", "sack", "ecn", "ecnseen", "fastopen"}


@dataclass(frozen=True)
class TcpSocket:
    local: tuple[str, int]
    peer: tuple[str, int]
    device: str | None  # the device the socket is bound to (SO_BINDTODEVICE / endpoint dev)
    fields: tuple[str, ...]  # everything ss printed after the addresses

    @property
    def congestion(self) -> str | None:
        """The congestion control name: the bare word ss prints before "wscale:" etc."""
        words = [f for f in self.fields if ":" not in f and f not in _FLAG_WORDS]
        return words[0] if words and not words[0].startswith(ULP_PREFIX) else None

    @property
    def ulp(self) -> str | None:
        return next((f[len(ULP_PREFIX):] for f in self.fields if f.startswith(ULP_PREFIX)),
                    None)

    @property
    def ulp_fields(self) -> dict[str, str]:
        """The "key:value" fields printed after the ULP's name, e.g. {"flags": "Mmec", ...}."""
        names = list(self.fields)
        start = next((i for i, f in enumerate(names) if f.startswith(ULP_PREFIX)), len(names))
        return dict(f.partition(":")[::2] for f in names[start + 1:] if ":" in f)


def _endpoint(text: str) -> tuple[tuple[str, int], str | None]:
    """"10.0.2.1%eth1:50033" -> (("10.0.2.1", 50033), "eth1"); IPv6 comes bracketed."""
    addr, _, port = text.rpartition(":")
    addr, _, device = addr.partition("%")
    return (addr.strip("[]"), int(port)), device or None


def tcp_sockets(ns: str | None = None) -> dict[tuple[tuple[str, int], tuple[str, int]],
                                                  TcpSocket]:
    """Every established TCP socket of ns, keyed by (local, peer) (address, port) pairs."""
    found = {}
    for line in run(["ss", "-tinHO", "state", "established"], ns=ns).stdout.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        # with a state filter ss leaves the state column out: recv-q, send-q, local, peer
        (local, device), (peer, _) = _endpoint(fields[2]), _endpoint(fields[3])
        found[(local, peer)] = TcpSocket(local, peer, device, tuple(fields[4:]))
    return found
