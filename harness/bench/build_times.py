"""Kernel build times (`invoke bench --only build`): cold, no-op and one-file rebuilds, and
the cold build of virtme-ng's own --defconfig configuration of the same source as baseline.

The cold build starts from an empty ccache and an empty build directory. The no-op rebuild
is the `invoke build` command itself. The one-file rebuild adds a patch that changes one
net/mptcp/*.c file to our series. Cheap cases are run several times and their median
reported; the cold builds take tens of minutes each and run once.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.kernel import build as kernel_build
from harness.kernel import source
from harness.paths import PROJECT_ROOT
from harness.run import run

REPEATS = 3
ONE_FILE = "net/mptcp/ctrl.c"
BASELINE_TIMEOUT = 3 * 3600.0


def _timed(action) -> float:
    start = time.monotonic()
    action()
    return time.monotonic() - start


def _invoke_build(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "invoke", "build", *args], cwd=PROJECT_ROOT,
                   check=True, stdout=subprocess.DEVNULL)


def _one_file_series(tmp: Path, base: Path, serial: int) -> Path:
    """Our series plus a patch that appends a comment to ONE_FILE (different each time)."""
    shutil.copytree(kernel_build.DEFAULT_PATCHES, tmp, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("configs"))
    lines = (base / ONE_FILE).read_text().splitlines()
    count = len(lines)
    patch = (f"--- a/{ONE_FILE}\n+++ b/{ONE_FILE}\n@@ -{count},1 +{count},2 @@\n"
             f" {lines[-1]}\n+/* mptcp-lab benchmark edit {serial} */\n")
    (tmp / "9999-bench-one-file.patch").write_text(patch)
    with (tmp / "series").open("a") as series:
        series.write("9999-bench-one-file.patch\n")
    return tmp


def measure(cache: Path) -> list[str]:
    request = kernel_build.BuildRequest(cache=cache)
    src = source.debian(cache)
    build_dir = kernel_build.build_dir_of(request, src)
    lines = []

    shutil.rmtree(cache / "ccache", ignore_errors=True)
    shutil.rmtree(build_dir, ignore_errors=True)
    cold = _timed(lambda: _invoke_build())
    lines.append(f"cold normal build (empty ccache and build dir): {cold:.0f} s")

    noop = [_timed(lambda: _invoke_build()) for _ in range(REPEATS)]
    lines.append(f"no-op rebuild (invoke build): median {statistics.median(noop):.2f} s "
                 f"of {', '.join(f'{t:.2f}' for t in noop)}")

    one_file = []
    for serial in range(REPEATS):
        with tempfile.TemporaryDirectory(prefix="mlab-bench-") as tmp:
            series = _one_file_series(Path(tmp), src.base, serial)
            one_file.append(_timed(lambda s=series: _invoke_build("--patches", str(s))))
    _invoke_build()  # back to our own series
    lines.append(f"one {ONE_FILE} change rebuilt: median {statistics.median(one_file):.0f} s "
                 f"of {', '.join(f'{t:.0f}' for t in one_file)}")

    baseline = _baseline_defconfig(src, cache / "build" / "bench-vng-defconfig")
    lines.append(f"baseline, virtme-ng --defconfig cold build: {baseline:.0f} s; ours is "
                 f"{cold / baseline:.0%} of it")
    return lines


def _baseline_defconfig(src: source.Source, build_dir: Path) -> float:
    """Cold build of `virtme-configkernel --defconfig` for the same tree (plain gcc)."""
    shutil.rmtree(build_dir, ignore_errors=True)
    build_dir.mkdir(parents=True)
    configkernel = Path(sys.executable).with_name("virtme-configkernel")
    run([str(configkernel), "--defconfig", "--arch", "x86_64", f"O={build_dir}"],
        timeout=600, cwd=src.base)
    jobs = f"-j{os.cpu_count() or 1}"
    return _timed(lambda: run(["make", "-C", str(src.base), f"O={build_dir}", jobs,
                               "bzImage"], timeout=BASELINE_TIMEOUT))

