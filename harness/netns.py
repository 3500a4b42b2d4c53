"""Network namespaces: create and remove named ones, and enter one from Python.

`entered(name)` switches the *calling thread* into a namespace and back. Sockets and
netlink sockets created inside keep belonging to that namespace after the switch back,
which is how the toolkit opens MPTCP sockets and PM netlink sockets "in" a host.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from collections.abc import Callable, Iterator
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


MS_BIND, MS_REC, MS_SHARED = 0x1000, 0x4000, 1 << 20
MNT_DETACH = 2


def create(name: str) -> None:
    """Create a named network namespace, remembered as this process's own.

    As `ip netns add` does: /run/netns made a shared mount (so that mount namespaces made
    later see the namespaces bound there, and their removal), an empty file there, and the
    new namespace bound onto it. The namespace is made by a short-lived thread that unshares
    its own network namespace: no process is forked (pyroute2 forks one, which costs tens
    of milliseconds from the guest's large Python under emulation)."""
    path = ns_path(name)
    _share_run_dir()
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0))
    except FileExistsError:
        raise NamespaceError(f"network namespace '{name}' exists already ({path})") from None
    try:
        in_new_namespace(lambda: _bind_this_namespace(path))
    except NamespaceError as err:
        path.unlink(missing_ok=True)
        raise NamespaceError(f"cannot create network namespace '{name}': {err}") from None
    _created_here.add(name)


def in_new_namespace(body: Callable[[], None]) -> None:
    """Run `body` in a thread of its own inside a new, unnamed network namespace. Nothing
    holds the namespace once the thread has ended, so the kernel then destroys it (its
    cleanup is deferred to the netns workqueue). Exceptions of `body` are raised here."""
    failure: list[BaseException] = []

    def thread() -> None:
        try:
            if _libc.unshare(CLONE_NEWNET) != 0:
                raise NamespaceError(f"unshare: {os.strerror(ctypes.get_errno())}")
            body()
        except BaseException as err:  # noqa: BLE001 - handed to the calling thread
            failure.append(err)

    runner = threading.Thread(target=thread, name="in a new netns")
    runner.start()
    runner.join()
    if failure:
        raise failure[0]


def _share_run_dir() -> None:
    NETNS_RUN_DIR.mkdir(parents=True, exist_ok=True)
    run_dir = bytes(NETNS_RUN_DIR)
    if _libc.mount(b"none", run_dir, None, MS_SHARED | MS_REC, None) == 0:
        return
    # not a mount point yet: bind it onto itself, then share it
    if (_libc.mount(run_dir, run_dir, b"none", MS_BIND | MS_REC, None) != 0
            or _libc.mount(b"none", run_dir, None, MS_SHARED | MS_REC, None) != 0):
        err = ctypes.get_errno()
        raise NamespaceError(f"cannot make {NETNS_RUN_DIR} a shared mount: {os.strerror(err)}")


def _bind_this_namespace(path: Path) -> None:
    """Bind the calling thread's network namespace onto `path`."""
    if _libc.mount(b"/proc/thread-self/ns/net", bytes(path), b"none", MS_BIND, None) != 0:
        raise NamespaceError(f"bind mount: {os.strerror(ctypes.get_errno())}")


def remove(name: str) -> None:
    path = ns_path(name)
    if _libc.umount2(bytes(path), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err != errno.EINVAL:  # EINVAL: nothing bound there (a half-made one): unlink it
            raise NamespaceError(f"cannot remove network namespace '{name}': "
                                 f"{os.strerror(err)}")
    path.unlink()
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
