"""Typed MPTCP path-manager events from the `mptcp_pm_events` generic netlink group.

Subscribe before the connection you want to observe starts: the kernel sends events only
to listeners that exist at that moment (this needs CAP_NET_ADMIN in the namespace).
"""

from __future__ import annotations

import enum
import ipaddress
import time
from dataclasses import dataclass, fields

from harness.errors import HarnessError
from harness.mptcp import netlink as nl
from harness.mptcp.pm import EVENTS_GROUP, MPTCP_PM_NAME


class EventKind(enum.StrEnum):
    CREATED = "created"
    ESTABLISHED = "established"
    CLOSED = "closed"
    ANNOUNCED = "announced"
    REMOVED = "removed"
    SUB_ESTABLISHED = "sub_established"
    SUB_CLOSED = "sub_closed"
    SUB_PRIORITY = "sub_priority"
    LISTENER_CREATED = "listener_created"
    LISTENER_CLOSED = "listener_closed"


EVENT_NUMBERS = {1: EventKind.CREATED, 2: EventKind.ESTABLISHED, 3: EventKind.CLOSED,
                 6: EventKind.ANNOUNCED, 7: EventKind.REMOVED, 10: EventKind.SUB_ESTABLISHED,
                 11: EventKind.SUB_CLOSED, 13: EventKind.SUB_PRIORITY,
                 15: EventKind.LISTENER_CREATED, 16: EventKind.LISTENER_CLOSED}

# enum mptcp_event_attr: number -> (field, decoder)
_ATTRS = {
    1: ("token", nl.u32), 2: ("family", nl.u16), 3: ("loc_id", nl.u8), 4: ("rem_id", nl.u8),
    5: ("saddr", lambda raw: str(ipaddress.IPv4Address(raw))),
    6: ("saddr", lambda raw: str(ipaddress.IPv6Address(raw))),
    7: ("daddr", lambda raw: str(ipaddress.IPv4Address(raw))),
    8: ("daddr", lambda raw: str(ipaddress.IPv6Address(raw))),
    9: ("sport", nl.be16), 10: ("dport", nl.be16), 11: ("backup", nl.u8), 12: ("error", nl.u8),
    13: ("flags", nl.u16), 14: ("timeout", nl.u32), 15: ("if_idx", nl.s32),
    16: ("reset_reason", nl.u32), 17: ("reset_flags", nl.u32), 18: ("server_side", nl.u8),
}


@dataclass(frozen=True)
class Event:
    """One PM event; fields the kernel did not send are None."""

    kind: EventKind | int  # an int for event numbers this code does not know yet
    token: int | None = None
    family: int | None = None
    loc_id: int | None = None
    rem_id: int | None = None
    saddr: str | None = None
    daddr: str | None = None
    sport: int | None = None
    dport: int | None = None
    backup: int | None = None
    error: int | None = None
    flags: int | None = None
    timeout: int | None = None
    if_idx: int | None = None
    reset_reason: int | None = None
    reset_flags: int | None = None
    server_side: int | None = None

    def matches(self, **expected) -> bool:
        return all(getattr(self, key) == value for key, value in expected.items())


_EVENT_FIELDS = {f.name for f in fields(Event)}


def decode_event(cmd: int, payload: bytes) -> Event:
    values = {}
    for number, raw in nl.iter_attrs(payload):
        if number in _ATTRS:
            name, decode = _ATTRS[number]
            values[name] = decode(raw)
    return Event(EVENT_NUMBERS.get(cmd, cmd), **values)


class EventTimeout(HarnessError, TimeoutError):
    pass


class EventListener:
    """Subscriber to the MPTCP PM events of namespace ns."""

    def __init__(self, ns: str | None = None):
        self.ns = ns
        self._genl = nl.GenlSocket(MPTCP_PM_NAME, ns)
        self._genl.subscribe(EVENTS_GROUP)
        self.events: list[Event] = []  # everything received, in order
        self._unclaimed: list[Event] = []  # not yet returned by wait_for

    def __enter__(self) -> EventListener:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._genl.close()

    def poll(self, timeout: float = 0.0) -> list[Event]:
        """Events that arrive within timeout (they are also kept in `events`)."""
        new = [decode_event(cmd, payload) for cmd, payload in self._genl.receive(timeout)]
        self.events += new
        self._unclaimed += new
        return new

    def wait_for(self, kind: str, timeout: float = 5.0, **match) -> Event:
        """The first unclaimed event of `kind` whose fields equal `match`, waiting up to timeout."""
        unknown = set(match) - _EVENT_FIELDS
        if unknown:
            raise ValueError(f"events have no field(s) {sorted(unknown)}")
        wanted = EventKind(kind)
        deadline = time.monotonic() + timeout
        while True:
            for event in self._unclaimed:
                if event.kind == wanted and event.matches(**match):
                    self._unclaimed.remove(event)
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = "\n  ".join(map(str, self.events)) or "none"
                raise EventTimeout(f"no {wanted} event matching {match} in {self.ns} within "
                                   f"{timeout:g} s; events seen:\n  {seen}")
            self.poll(remaining)
