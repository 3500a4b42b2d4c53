"""The gcov counters of the running kernel, in the guest: reset them, or copy them out.

A kernel built with CONFIG_GCOV_KERNEL (the coverage variant) shows a `.gcda` file per
profiled object under /sys/kernel/debug/gcov, at the object's path in the build directory
(`/sys/kernel/debug/gcov/<build dir>/net/mptcp/protocol.gcda`); writing to `reset` zeroes
every counter. A part of a run (a test, a selftest slot) is measured by a reset before it and
a copy after it: `collect(DEST)` writes the files under DEST at their build-relative paths
(`DEST/net/mptcp/protocol.gcda`), which is what lcov reads beside the build's `.gcno` files.

Used by the pytest plugin around each test (COVERAGE_ENV names the run's directory) and by
the host between selftest slots: `python -m harness.coverage.guest reset|collect DEST`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

GCOV_ROOT = Path("/sys/kernel/debug/gcov")
COVERAGE_ENV = "MPTCP_LAB_COVERAGE"  # the run's counters directory in the exchange directory


class NoCounters(RuntimeError):
    pass


def reset(root: Path = GCOV_ROOT) -> None:
    (root / "reset").write_text("1\n")


def collect(dest: Path, build_dir: Path, root: Path = GCOV_ROOT) -> int:
    """Copy every .gcda of the build's objects into dest; the number of files copied."""
    counters = root / build_dir.relative_to("/")
    if not counters.is_dir():
        raise NoCounters(f"no gcov counters of {build_dir} in {root}: the running kernel "
                         "is not a coverage build of it (invoke build --variant coverage)")
    copied = 0
    for directory, _subdirs, files in os.walk(counters):
        for name in files:
            if name.endswith(".gcda"):
                source = Path(directory) / name
                target = dest / source.relative_to(counters)
                target.parent.mkdir(parents=True, exist_ok=True)
                # debugfs reports size 0: read the file, do not copy by size
                target.write_bytes(source.read_bytes())
                copied += 1
    return copied


def run_directory() -> Path | None:
    value = os.environ.get(COVERAGE_ENV)
    return Path(value) if value else None


def main(argv: list[str]) -> int:
    if argv[:1] == ["reset"] and len(argv) == 1:
        reset()
        return 0
    if argv[:1] == ["collect"] and len(argv) == 3:
        try:
            print(collect(Path(argv[1]), Path(argv[2])))
        except NoCounters as err:
            print(err, file=sys.stderr)
            return 1
        return 0
    print("usage: python -m harness.coverage.guest reset | collect DEST BUILD_DIR",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
