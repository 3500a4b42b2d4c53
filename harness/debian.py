"""`invoke setup`: install the Debian packages the project needs (idempotent, root, Debian 12)."""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import HarnessError
from harness.run import run

# What each package is for, so the next engineer knows whether it can go.
DEBIAN_PACKAGES = {
    "iproute2": "ip, ss, tc: namespaces, MPTCP endpoints as a second client, ss -M",
    "nftables": "the MPTCP-stripping / dropping middlebox",
    "tcpdump": "packet captures that check options on the wire",
    "iputils-ping": "reachability checks of topologies",
    "procps": "sysctl",
    "ethtool": "offload settings of test interfaces",
    "python3-venv": "the project's virtualenv",
    "linux-source-6.12": "the default kernel source (/usr/src/linux-source-6.12.tar.xz)",
    "build-essential": "gcc and make for the kernel build",
    "ccache": "kernel rebuilds from cache",
    "bc": "kernel build (timeconst)",
    "bison": "kernel build (kconfig, dtc)",
    "flex": "kernel build (kconfig, dtc)",
    "libelf-dev": "kernel build (objtool, ORC unwinder)",
    "libssl-dev": "kernel build (certificate tools)",
    "cpio": "kernel build (kheaders)",
    "xz-utils": "unpacking the kernel source",
    "patch": "applying the patch series",
    "iptables": "the kernel's MPTCP selftests (mptcp_join.sh, mptcp_sockopt.sh)",
    "rsync": "installing the kernel's selftests (kselftest's make install)",
    "qemu-system-x86": "the VM that runs our kernel (virtme-ng drives it)",
    "openssh-server": "sshd inside the VM (the guest runs the host's binary over 9p); "
                      "the host's own ssh service is not needed",
    "mptcpize": "forced MPTCP for unmodified applications (tests/mptcp/test_mptcpize.py; the "
                "guest runs the host's binaries over 9p); Debian ships it apart from mptcpd",
    "curl": "a real HTTP client run under mptcpize (tests/mptcp/test_mptcpize.py)",
    "lcov": "coverage reports of net/mptcp (lcov, genhtml) from the guest's gcov counters",
    "gdb": "invoke gdb: the kernel's debugger on the VM through QEMU's gdb stub",
    "iperf3": "a real throughput client and server run under mptcpize "
              "(tests/mptcp/test_mptcpize.py)",
}
SETUP_TIMEOUT = 1800.0


class SetupError(HarnessError):
    pass


def check_platform(os_release: Path = Path("/etc/os-release")) -> None:
    """Stop with a clear message unless we are root on Debian 12."""
    if os.geteuid() != 0:
        raise SetupError("invoke setup installs Debian packages and must run as root "
                         "(on a Debian 12 machine: sudo invoke setup)")
    fields = dict(line.split("=", 1) for line in os_release.read_text().splitlines()
                  if "=" in line)
    distro = fields.get("ID", "").strip('"')
    version = fields.get("VERSION_ID", "").strip('"')
    if (distro, version) != ("debian", "12"):
        raise SetupError(f"invoke setup supports Debian 12 only; this is {distro} {version} "
                         f"({os_release}). Install the equivalents of: "
                         f"{' '.join(sorted(DEBIAN_PACKAGES))}")


def missing_packages(packages: list[str]) -> list[str]:
    result = run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *packages],
                 check=False)
    installed = {line.split()[0] for line in result.stdout.splitlines()
                 if line.endswith(" installed")}
    return [p for p in packages if p not in installed]


def install(packages: list[str] | None = None) -> list[str]:
    """Install what is missing of `packages` (default: all we need); return what was installed."""
    check_platform()
    missing = missing_packages(packages or sorted(DEBIAN_PACKAGES))
    if not missing:
        return []
    env_argv = ["env", "DEBIAN_FRONTEND=noninteractive"]
    run([*env_argv, "apt-get", "update", "-q"], timeout=SETUP_TIMEOUT)
    run([*env_argv, "apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
        timeout=SETUP_TIMEOUT)
    return missing
