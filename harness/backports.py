"""Newer iproute2 for the kernel's selftests, from bookworm-backports, kept in our cache.

Debian 12's iproute2 (6.1) predates what the 6.12 MPTCP selftests check (`ss` printing
last_data_sent and friends for diag.sh). The backports package is fetched with apt using
private sources, lists and cache directories, then unpacked under `<cache>/tools/iproute2`:
the host's own packages and apt state stay as they were. The selftests run with its
directories first on PATH (the VM sees the cache at the same path).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.errors import HarnessError
from harness.run import CommandError, run

SUITE = "bookworm-backports"
SOURCE = f"deb http://deb.debian.org/debian {SUITE} main"
PACKAGE = "iproute2"
BIN_DIRS = ("bin", "sbin", "usr/bin", "usr/sbin")
APT_TIMEOUT = 600.0


class BackportError(HarnessError):
    pass


def root(cache: Path) -> Path:
    return cache / "tools" / PACKAGE


def path_dirs(cache: Path) -> list[str]:
    """The unpacked iproute2's binary directories, or [] if it was not fetched."""
    base = root(cache)
    if not (base / "bin" / "ss").exists():
        return []
    return [str(base / d) for d in BIN_DIRS]


def fetch_iproute2(cache: Path) -> str:
    """Fetch and unpack iproute2 from backports (once); return its `ss -V` line."""
    base = root(cache)
    if not path_dirs(cache):
        deb = _download(cache / "tools" / "apt")
        scratch = base.with_name(f"{PACKAGE}.partial")
        shutil.rmtree(scratch, ignore_errors=True)
        run(["dpkg-deb", "-x", str(deb), str(scratch)])
        scratch.replace(base)
    return run([str(base / "bin" / "ss"), "-V"]).stdout.strip()


def _download(apt_dir: Path) -> Path:
    (apt_dir / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (apt_dir / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    debs = apt_dir / "debs"
    debs.mkdir(exist_ok=True)
    sources = apt_dir / "sources.list"
    sources.write_text(SOURCE + "\n")
    options = ["-o", f"Dir::Etc::sourcelist={sources}", "-o", "Dir::Etc::sourceparts=-",
               "-o", f"Dir::State::Lists={apt_dir / 'lists'}",
               "-o", f"Dir::Cache={apt_dir / 'cache'}", "-o", "APT::Sandbox::User=root"]
    try:
        run(["apt-get", *options, "update", "-q"], timeout=APT_TIMEOUT)
        run(["apt-get", *options, "download", "-q", f"{PACKAGE}/{SUITE}"], cwd=debs,
            timeout=APT_TIMEOUT)
    except CommandError as err:
        raise BackportError(f"could not fetch {PACKAGE} from {SUITE} ({SOURCE}): {err}") from None
    found = sorted(debs.glob(f"{PACKAGE}_*.deb"))
    if not found:
        raise BackportError(f"apt-get download {PACKAGE}/{SUITE} left no .deb in {debs}")
    return found[-1]
