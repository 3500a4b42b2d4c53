"""A namespace's TCP and MPTCP sockets as text, for a run's evidence: what `ss -tMnie`
shows, read in this process through sock_diag. Under emulation an `ss` process costs
0.13 s in the guest, and a repro run took two per snapshot.

One line per socket: protocol, state, local and remote address, inode; for TCP its
congestion control and ULP ("mptcp" on a subflow). Then the fields of its info struct
(struct tcp_info, struct mptcp_info) as name=value, and for a subflow the attributes of
its MPTCP ULP info (MPTCP_SUBFLOW_ATTR_* of include/uapi/linux/mptcp_pm.h, the flags by
their MPTCP_SUBFLOW_FLAG_* names of include/uapi/linux/mptcp.h).
"""

from __future__ import annotations

import socket
import struct
import textwrap
from collections.abc import Callable
from dataclasses import fields

from harness.mptcp import diag
from harness.mptcp.constants import IPPROTO_MPTCP
from harness.mptcp.structs import MptcpInfo, TcpInfo

INET_DIAG_CONG = 4
INET_DIAG_ULP_INFO = 19  # sent with CAP_NET_ADMIN, not asked for
INET_ULP_INFO_NAME, INET_ULP_INFO_MPTCP = 1, 3
SUBFLOW_ATTRS = {1: ("token_rem", "I"), 2: ("token_loc", "I"), 3: ("relwrite_seq", "I"),
                 4: ("map_seq", "Q"), 5: ("map_sfseq", "I"), 6: ("ssn_offset", "I"),
                 7: ("map_datalen", "H"), 8: ("flags", "I"), 9: ("id_rem", "B"),
                 10: ("id_loc", "B")}
SUBFLOW_FLAGS = ("MCAP_REM", "MCAP_LOC", "JOIN_REM", "JOIN_LOC", "BKUP_REM", "BKUP_LOC",
                 "FULLY_ESTABLISHED", "CONNECTED", "MAPVALID")  # bit 0 upwards
WIDTH = 100


def listing(ns: str | None) -> str:
    """Every TCP and MPTCP socket of namespace ns, in every state."""
    lines = _listed(ns, socket.IPPROTO_TCP, (diag.INET_DIAG_INFO, INET_DIAG_CONG), _tcp)
    lines += _listed(ns, IPPROTO_MPTCP, (diag.INET_DIAG_INFO,), _mptcp)
    return "\n".join(lines) if lines else "(no TCP or MPTCP socket)"


def _listed(ns: str | None, protocol: int, extensions: tuple[int, ...],
            lines_of: Callable[[diag.DiagSocket], list[str]]) -> list[str]:
    """The lines of every socket of `protocol`, or one saying why they could not be read
    (a kernel without MPTCP has no MPTCP sock_diag handler)."""
    try:
        found = diag.dump(ns, protocol, extensions)
    except (diag.DiagError, OSError) as err:
        return [f"(the sockets of protocol {protocol} could not be listed: {err})"]
    return [line for sock in found for line in lines_of(sock)]


def _head(protocol: str, sock: diag.DiagSocket) -> str:
    return (f"{protocol} {sock.state} {_endpoint(sock.local)} {_endpoint(sock.remote)} "
            f"ino:{sock.inode}")


def _endpoint(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _fields(label: str, values: dict[str, object]) -> list[str]:
    text = " ".join(f"{name}={value}" for name, value in values.items())
    return textwrap.wrap(f"{label}: {text}", WIDTH, initial_indent="  ",
                         subsequent_indent="      ")


def _tcp(sock: diag.DiagSocket) -> list[str]:
    head = _head("tcp", sock)
    if diag.INET_DIAG_INFO not in sock.attrs:  # a request or TIME-WAIT socket: no info
        return [head]
    congestion = sock.attrs.get(INET_DIAG_CONG, b"").rstrip(b"\0").decode(errors="replace")
    ulp = diag.attributes(sock.attrs.get(INET_DIAG_ULP_INFO, b""))
    ulp_name = ulp.get(INET_ULP_INFO_NAME, b"").rstrip(b"\0").decode(errors="replace")
    lines = [head + (f" {congestion}" if congestion else "") + (f" ulp:{ulp_name}"
                                                                 if ulp_name else "")]
    info = TcpInfo.decode(sock.attrs[diag.INET_DIAG_INFO])
    lines += _fields("tcp_info", {f.name: getattr(info, f.name) for f in fields(info)})
    if INET_ULP_INFO_MPTCP in ulp:
        lines += _fields("subflow", _subflow(diag.attributes(ulp[INET_ULP_INFO_MPTCP])))
    return lines


def _subflow(attrs: dict[int, bytes]) -> dict[str, object]:
    values: dict[str, object] = {}
    for kind, (name, fmt) in SUBFLOW_ATTRS.items():
        if kind in attrs and len(attrs[kind]) >= struct.calcsize("=" + fmt):
            values[name] = struct.unpack_from("=" + fmt, attrs[kind])[0]
    flags = values.get("flags")
    if isinstance(flags, int):
        names = [name for bit, name in enumerate(SUBFLOW_FLAGS) if flags & (1 << bit)]
        values["flags"] = f"{flags:#x}({','.join(names)})"
    return values


def _mptcp(sock: diag.DiagSocket) -> list[str]:
    head = _head("mptcp", sock)
    if diag.INET_DIAG_INFO not in sock.attrs:
        return [head]
    info = MptcpInfo.decode(sock.attrs[diag.INET_DIAG_INFO])
    return [head, *_fields("mptcp_info", {f.name: getattr(info, f.name) for f in fields(info)})]
