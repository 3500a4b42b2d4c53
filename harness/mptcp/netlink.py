"""A small generic netlink client: attributes, requests with ACK, dumps, multicast groups.

Only what the MPTCP path manager needs, written over a raw AF_NETLINK socket with struct so
the bytes on the wire stay visible. Kernel errors come back as NetlinkError with the errno
and, when the kernel gave one, its extended-ACK message.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
from collections.abc import Iterator

from harness.errors import HarnessError
from harness.netns import entered

NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP, NETLINK_CAP_ACK, NETLINK_EXT_ACK = 1, 10, 11
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200  # flags of an NLMSG_ERROR reply
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLMSGERR_ATTR_MSG = 1
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF

GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, CTRL_ATTR_MCAST_GROUPS = 1, 2, 7
CTRL_ATTR_MCAST_GRP_NAME, CTRL_ATTR_MCAST_GRP_ID = 1, 2

NLMSGHDR = struct.Struct("=IHHII")
GENLMSGHDR = struct.Struct("=BBH")
NLATTR = struct.Struct("=HH")
DEFAULT_TIMEOUT = 5.0


class NetlinkError(HarnessError):
    def __init__(self, what: str, err: int, extack: str | None = None):
        self.errno = err
        name = errno.errorcode.get(err, str(err))
        text = f"{what} failed: {name} ({os.strerror(err)})"
        if extack:
            text += f': kernel says "{extack}"'
        super().__init__(text)
        self.extack = extack


def _align(n: int) -> int:
    return (n + 3) & ~3


# ---- attributes -------------------------------------------------------------------------

def attr(kind: int, payload: bytes) -> bytes:
    raw = NLATTR.pack(NLATTR.size + len(payload), kind) + payload
    return raw + bytes(_align(len(raw)) - len(raw))


def attr_u8(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=B", value))


def attr_u16(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=H", value))


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def attr_s32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=i", value))


def attr_str(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def nest(kind: int, *children: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(children))


def iter_attrs(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of each attribute in data, flags stripped from the type."""
    pos = 0
    while pos + NLATTR.size <= len(data):
        length, kind = NLATTR.unpack_from(data, pos)
        if length < NLATTR.size or pos + length > len(data):
            raise ValueError(f"malformed netlink attribute at offset {pos}")
        yield kind & NLA_TYPE_MASK, data[pos + NLATTR.size:pos + length]
        pos += _align(length)


def parse_attrs(data: bytes) -> dict[int, bytes]:
    return dict(iter_attrs(data))


def u8(raw: bytes) -> int:
    return raw[0]


def u16(raw: bytes) -> int:
    return struct.unpack("=H", raw[:2])[0]


def be16(raw: bytes) -> int:
    return struct.unpack("!H", raw[:2])[0]


def u32(raw: bytes) -> int:
    return struct.unpack("=I", raw[:4])[0]


def s32(raw: bytes) -> int:
    return struct.unpack("=i", raw[:4])[0]


def cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode()


# ---- messages ---------------------------------------------------------------------------

def message(msg_type: int, flags: int, seq: int, cmd: int, version: int, payload: bytes) -> bytes:
    body = GENLMSGHDR.pack(cmd, version, 0) + payload
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), msg_type, flags, seq, 0) + body


def parse_error(payload: bytes, flags: int) -> tuple[int, str | None]:
    """(errno, extack message) of an NLMSG_ERROR payload; errno 0 is an ACK."""
    err = -struct.unpack_from("=i", payload)[0]
    extack = None
    if flags & NLM_F_ACK_TLVS and len(payload) >= 4 + NLMSGHDR.size:
        echoed_len = NLMSGHDR.unpack_from(payload, 4)[0]
        # with NETLINK_CAP_ACK only the header of the request is echoed back
        tlvs_at = 4 + (NLMSGHDR.size if flags & NLM_F_CAPPED else _align(echoed_len))
        attrs = parse_attrs(payload[tlvs_at:])
        if NLMSGERR_ATTR_MSG in attrs:
            extack = cstr(attrs[NLMSGERR_ATTR_MSG])
    return err, extack


def parse_done(payload: bytes, flags: int) -> tuple[int, str | None]:
    """(errno, extack message) of an NLMSG_DONE: TLVs follow the int, no request is echoed."""
    if len(payload) < 4:
        return 0, None
    err = -struct.unpack_from("=i", payload)[0]
    extack = None
    if flags & NLM_F_ACK_TLVS:
        extack = cstr(parse_attrs(payload[4:]).get(NLMSGERR_ATTR_MSG, b"")) or None
    return err, extack


def split_messages(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """(type, flags, seq, payload) of each netlink message in one datagram."""
    pos = 0
    while pos + NLMSGHDR.size <= len(data):
        length, kind, flags, seq, _pid = NLMSGHDR.unpack_from(data, pos)
        if length < NLMSGHDR.size:
            raise ValueError("malformed netlink message header")
        yield kind, flags, seq, data[pos + NLMSGHDR.size:pos + length]
        pos += _align(length)


class GenlSocket:
    """A generic netlink socket for one family, opened in network namespace ns."""

    def __init__(self, family: str, ns: str | None = None, timeout: float = DEFAULT_TIMEOUT):
        self.family_name, self.timeout = family, timeout
        with entered(ns):
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        try:
            self._sock.bind((0, 0))
            self._sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            self._sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            self._seq = 0
            self.family_id, self.groups = self._resolve(family)
        except BaseException:
            self._sock.close()
            raise

    def __enter__(self) -> GenlSocket:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def _resolve(self, family: str) -> tuple[int, dict[str, int]]:
        (reply,) = self._transact(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1,
                                  attr_str(CTRL_ATTR_FAMILY_NAME, family),
                                  f"resolving generic netlink family {family}", dump=False)
        attrs = parse_attrs(reply)
        groups = {}
        for _index, group in iter_attrs(attrs.get(CTRL_ATTR_MCAST_GROUPS, b"")):
            fields = parse_attrs(group)
            groups[cstr(fields[CTRL_ATTR_MCAST_GRP_NAME])] = u32(fields[CTRL_ATTR_MCAST_GRP_ID])
        return u16(attrs[CTRL_ATTR_FAMILY_ID]), groups

    def request(self, cmd: int, payload: bytes, what: str, version: int = 1,
                dump: bool = False) -> list[bytes]:
        """Send one command; return the attribute payloads of the replies (after the ACK)."""
        return self._transact(self.family_id, cmd, version, payload, what, dump)

    def _transact(self, msg_type: int, cmd: int, version: int, payload: bytes, what: str,
                  dump: bool) -> list[bytes]:
        self._seq += 1
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        self._sock.send(message(msg_type, flags, self._seq, cmd, version, payload))
        replies: list[bytes] = []
        while True:
            for kind, mflags, seq, body in split_messages(self._recv(what)):
                if seq != self._seq:
                    continue
                if kind == NLMSG_ERROR:
                    err, extack = parse_error(body, mflags)
                    if err:
                        raise NetlinkError(what, err, extack)
                    return replies
                if kind == NLMSG_DONE:
                    # a dump that fails part way ends with NLMSG_DONE carrying -errno
                    err, extack = parse_done(body, mflags)
                    if err:
                        raise NetlinkError(what, err, extack)
                    return replies
                replies.append(body[GENLMSGHDR.size:])

    def _recv(self, what: str) -> bytes:
        ready, _, _ = select.select([self._sock], [], [], self.timeout)
        if not ready:
            raise NetlinkError(f"{what} (no answer within {self.timeout:g} s)", errno.ETIMEDOUT)
        return self._sock.recv(1 << 16)

    def subscribe(self, group: str) -> None:
        if group not in self.groups:
            raise HarnessError(f"generic netlink family {self.family_name} has no multicast "
                               f"group {group!r} (groups: {', '.join(self.groups) or 'none'})")
        self._sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, self.groups[group])

    def receive(self, timeout: float) -> list[tuple[int, bytes]]:
        """Multicast notifications that arrive within timeout: (genl cmd, attributes)."""
        ready, _, _ = select.select([self._sock], [], [], max(timeout, 0))
        if not ready:
            return []
        found = []
        for kind, _flags, _seq, body in split_messages(self._sock.recv(1 << 16)):
            if kind == self.family_id:
                found.append((body[0], body[GENLMSGHDR.size:]))
        return found
