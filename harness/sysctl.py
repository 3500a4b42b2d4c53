"""Read and write sysctls of a network namespace through /proc/sys.

/proc/sys/net is resolved in the namespace of the thread that opens the file, so the
calling thread enters the namespace (harness.netns.entered) for the open.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.netns import entered

PROC_SYS = Path("/proc/sys")


class SysctlError(HarnessError):
    pass


def sysctl_path(key: str) -> Path:
    """Path of a dotted sysctl key such as net.mptcp.enabled."""
    if not key or "/" in key or ".." in key:
        raise SysctlError(f"bad sysctl key {key!r}")
    return PROC_SYS / key.replace(".", "/")


def read(key: str, ns: str | None = None) -> str:
    with entered(ns):
        try:
            return sysctl_path(key).read_text().strip()
        except FileNotFoundError:
            raise SysctlError(f"sysctl {key} does not exist on this kernel") from None


def write(key: str, value: object, ns: str | None = None) -> None:
    with entered(ns):
        try:
            sysctl_path(key).write_text(f"{value}\n")
        except FileNotFoundError:
            raise SysctlError(f"sysctl {key} does not exist on this kernel") from None
        except OSError as exc:
            raise SysctlError(f"cannot set sysctl {key}={value}: {exc.strerror}") from None


def exists(key: str, ns: str | None = None) -> bool:
    with entered(ns):
        return sysctl_path(key).exists()
