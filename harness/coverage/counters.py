"""The gcov counters of the VM's kernel, reset before and collected after each part of a run.

A part is a test (the guest's pytest plugin does it around each test, told by COVERAGE_ENV),
a selftest slot or the KUnit suites (the host does it through the guest module). Each
part's counters land in `<exchange dir>/coverage/<part>/`, which harness.coverage.report
turns into one report.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.coverage import guest
from harness.coverage.errors import CoverageError
from harness.coverage.report import require_gcov
from harness.kernel.layout import build_dir_of

GUEST_MODULE = "harness.coverage.guest"
GUEST_TIMEOUT = 120.0


@dataclass(frozen=True)
class Counters:
    vm: object
    directory: Path  # in the VM's exchange directory: both sides see it at this path
    build_dir: Path

    @classmethod
    def of(cls, vm) -> Counters:
        """The VM's counters, refused unless its kernel is a coverage build; the
        collection directory starts empty."""
        build_dir = build_dir_of(vm.image)
        require_gcov(build_dir)
        directory = vm.exchange_dir / "coverage"
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()
        return cls(vm, directory, build_dir)

    def env(self) -> dict[str, str]:
        """What the guest's pytest needs to reset and collect around each test."""
        return {guest.COVERAGE_ENV: str(self.directory)}

    def reset(self) -> None:
        self._guest("reset")

    def collect(self, part: str) -> None:
        self._guest("collect", str(self.directory / part), str(self.build_dir))

    def _guest(self, *args: str) -> None:
        report = self.vm.run_module(GUEST_MODULE, args, GUEST_TIMEOUT * self.vm.slowdown)
        if report.returncode != 0:
            raise CoverageError(f"gcov counters in the VM: {GUEST_MODULE} {' '.join(args)} "
                                f"exited {report.returncode}:\n{report.stdout}")


@contextmanager
def part(counters: Counters | None, name: str) -> Iterator[None]:
    """Reset before the part, collect its counters after it; nothing without counters. A
    part that raised is not collected: its VM may be gone."""
    if counters is None:
        yield
        return
    counters.reset()
    yield
    counters.collect(name)
