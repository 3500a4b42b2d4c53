"""Link impairment as qdiscs: netem for delay, jitter and loss; tbf for a rate limit.

With delay/jitter/loss, netem is the root qdisc and a rate limit becomes a tbf child of it;
a pure rate limit is a root tbf. The host kernel of a CI machine may lack netem
(CONFIG_NET_SCH_NETEM): then an impairment that needs it raises ImpairmentUnsupported.
"""

from __future__ import annotations

import errno
import functools
import secrets

from pyroute2 import IPRoute, NetlinkError

from harness import PROJECT_PREFIX
from harness import netns as namespaces
from harness.topology.model import Impairment

TBF_LATENCY = "50ms"  # how long a packet may wait in the tbf queue before it is dropped
MIN_BURST = 32 * 1024  # bytes: room for a few full-size segments at any rate
NETEM_HANDLE = 0x10000  # 1:


@functools.cache
def kernel_has_netem() -> bool:
    """Whether the running kernel has the netem qdisc: tried on loopback of a scratch netns."""
    name = f"{PROJECT_PREFIX}-{secrets.token_hex(3)}-probe"
    namespaces.create(name)
    try:
        with namespaces.rtnetlink(name) as ipr:
            try:
                ipr.tc("add", "netem", ipr.link_lookup(ifname="lo")[0], delay=1000)
            except NetlinkError as exc:
                if exc.code in (errno.ENOENT, errno.EOPNOTSUPP):
                    return False
                raise
        return True
    finally:
        namespaces.remove(name)


def burst_bytes(rate_bit: int) -> int:
    """A tbf bucket holding 10 ms of traffic at the rate, and at least MIN_BURST."""
    return max(MIN_BURST, rate_bit // 8 // 100)


def apply(ipr: IPRoute, index: int, impair: Impairment) -> None:
    """Install `impair` as the egress qdiscs of interface `index` (pyroute2, in its netns)."""
    parent = {}
    if impair.needs_netem:
        ipr.tc("add", "netem", index, handle=NETEM_HANDLE,
               delay=impair.delay_us or 0, jitter=impair.jitter_us or 0,
               loss=impair.loss_percent or 0)
        parent = {"parent": NETEM_HANDLE + 1}  # 1:1, netem's single class
    if impair.rate_bit is not None:
        ipr.tc("add", "tbf", index, **parent, rate=f"{impair.rate_bit}bit",
               burst=burst_bytes(impair.rate_bit), latency=TBF_LATENCY)
