"""Build the kernel's MPTCP selftests from the tree (and series) the kernel was built from.

Everything goes into the kernel's O= build directory: the UAPI headers (`make headers`, in
`<build>/usr/include`), the helpers (`<build>/kselftest/net/mptcp`) and an installed copy of
the suite with its shared shell libraries (`<build>/kselftest_install/net/mptcp`), which the
VM sees at the same path. The source tree is only read: a user's --tree stays clean.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.kernel import build_lock, patches
from harness.kernel.layout import RECORD_FILE, build_dir_of
from harness.kernel.record import BuildRecord
from harness.run import CommandError, run

TARGET = "net/mptcp"
MAKE_TIMEOUT = 1800.0
LOG_NAME = "kselftest-build.log"


class SelftestBuildError(HarnessError):
    pass


@dataclass(frozen=True)
class InstalledSuite:
    directory: Path  # <build>/kselftest_install/net/mptcp: scripts, helpers, settings
    scripts: tuple[str, ...]  # the suite's TEST_PROGS, in the order kselftest lists them
    timeout_s: int  # the suite's `settings` file (timeout=...), per script


def build_selftests(image: Path) -> InstalledSuite:
    """Build and install the MPTCP selftests of the kernel whose image is `image`."""
    build_dir = build_dir_of(image)
    if build_dir is None or not (build_dir / "source").is_dir():
        raise SelftestBuildError(f"{image} is not an image of an out-of-tree kernel build "
                                 f"(no <build>/source next to it): run `invoke build` first")
    # our builds (they have a build record) take turns with the other builds of their cache:
    # the tree may be the working copy that another build patches
    ours = (build_dir / RECORD_FILE).exists()
    with build_lock.held(build_dir.parent, "selftests build") if ours else nullcontext():
        return _build_and_install(build_dir)


def _build_and_install(build_dir: Path) -> InstalledSuite:
    tree = (build_dir / "source").resolve()
    check_same_series(build_dir, tree)
    install = build_dir / "kselftest_install"
    log = build_dir / LOG_NAME
    jobs = f"-j{os.cpu_count() or 1}"
    _make(["make", "-C", str(tree), f"O={build_dir}", jobs, "headers"], log)
    _make(["make", "-C", str(tree / "tools" / "testing" / "selftests"), f"O={build_dir}", jobs,
           f"TARGETS={TARGET}", f"INSTALL_PATH={install}", "install"], log)
    return installed_suite(install)


def check_same_series(build_dir: Path, tree: Path) -> None:
    """Refuse a tree that holds another series than the kernel was built with: builds share
    the working copy, and a later build of another series (a bundle's revert, another
    --patches) re-patched it; its headers and selftests are not this kernel's."""
    record, applied = BuildRecord.load(build_dir), patches.applied_series(tree)
    if record is None or applied is None or applied == record.patches:
        return
    names = ", ".join(name for name, _ in applied) or "no patch"
    raise SelftestBuildError(
        f"{tree} now holds another series ({names}) than the kernel of {build_dir} was built "
        f"with: a later build re-patched it. Run the build of this kernel again (invoke "
        f"build with its options), then the selftests.")


def _make(argv: list[str], log: Path) -> None:
    try:
        result = run(argv, timeout=MAKE_TIMEOUT)
    except CommandError as err:
        log.write_text(f"$ {' '.join(argv)}\n{err.stdout}\n{err.stderr}")
        errors = [line for line in err.stderr.splitlines() if "error" in line.lower()][:20]
        raise SelftestBuildError(f"building the MPTCP selftests failed (log: {log}):\n"
                                 + "\n".join(errors or err.stderr.splitlines()[-20:])) from None
    with log.open("a") as f:
        f.write(f"$ {' '.join(argv)}\n{result.stdout}\n{result.stderr}\n")


def installed_suite(install: Path) -> InstalledSuite:
    """The installed suite: its scripts from kselftest-list.txt and its per-script timeout."""
    listing = install / "kselftest-list.txt"
    if not listing.exists():
        raise SelftestBuildError(f"no {listing}: the selftests install did not complete")
    scripts = tuple(line.split(":", 1)[1] for line in listing.read_text().splitlines()
                    if line.startswith(f"{TARGET}:"))
    directory = install / TARGET
    return InstalledSuite(directory, scripts, _timeout(directory / "settings"))


def _timeout(settings: Path, default: int = 45) -> int:
    """kselftest's per-test timeout: `timeout=N` in the suite's settings (45 s otherwise)."""
    if settings.exists():
        for line in settings.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "timeout" and value.strip().isdigit():
                return int(value)
    return default
