"""Network namespaces: create and remove named ones, and enter one from Python.

`entered(name)` switches the *calling thread* into a namespace and back. Sockets and
netlink sockets created inside keep belonging to that namespace after the switch back,
which is how the toolkit opens MPTCP sockets and PM netlink sockets "in" a host.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError

if TYPE_CHECKING:
    from pyroute2 import IPRoute

NETNS_RUN_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


class NamespaceError(HarnessError):
    pass


_created_here: set[str] = set()  # namespaces this process made and has not removed yet


# pyroute2 creates a namespace from a forked child and gives it 2 s to answer. The debug
# kernel (KASAN) under emulation forks several times slower, and with another VM on the same
# cores the child missed those 2 s: "TimeoutError: no response from the child". This only
# bounds a child that is stuck.
NAMESPACE_CHILD_TIMEOUT_S = 60


def create(name: str) -> None:
    """Create a named network namespace, remembered as this process's own."""
    from pyroute2 import config as pyroute2_config
    from pyroute2 import netns as pyroute2_netns

    pyroute2_config.default_communicate_timeout = max(
        pyroute2_config.default_communicate_timeout, NAMESPACE_CHILD_TIMEOUT_S)
    pyroute2_netns.create(name)
    _created_here.add(name)


def remove(name: str) -> None:
    from pyroute2 import netns as pyroute2_netns

    pyroute2_netns.remove(name)
    _created_here.discard(name)


def created_here() -> set[str]:
    """Namespaces made by this process that still exist (whoever else runs beside us)."""
    return {name for name in _created_here if exists(name)}


def ns_path(name: str) -> Path:
    return NETNS_RUN_DIR / name


def exists(name: str) -> bool:
    return ns_path(name).exists()


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NamespaceError(f"setns failed: {os.strerror(err)}")


@contextmanager
def entered(name: str | None) -> Iterator[None]:
    """Run the body with the calling thread inside namespace `name` (None: stay put)."""
    if name is None:
        yield
        return
    path = ns_path(name)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NamespaceError(f"network namespace '{name}' does not exist ({path})") from None
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


@contextmanager
def rtnetlink(name: str | None) -> Iterator[IPRoute]:
    """An rtnetlink socket (pyroute2's IPRoute) of namespace `name`, opened by the calling
    thread from inside it. IPRoute(netns=name) forks a helper process for every socket
    instead, which in the guest's large Python under emulation costs more than the requests
    made over it."""
    from pyroute2 import IPRoute

    with entered(name):
        ipr = IPRoute()
    with ipr:
        yield ipr
