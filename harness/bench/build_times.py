"""Kernel build times (`invoke bench --only build`): cold, no-op and one-file rebuilds, and
the cold build of virtme-ng's own --defconfig configuration of the same source as baseline.

The cold build starts from an emptied ccache and an empty build directory (the source stays
unpacked: that happens once per machine). The no-op rebuild is the `invoke build` command
itself. The one-file rebuild adds a patch to our series that makes a real code change in one
net/mptcp/*.c file (a new string each run, so ccache cannot serve it). Cheap cases run
several times and their median is reported; the cold builds take many minutes and run once.
Cold builds report wall time and the CPU time (user + sys) of everything they ran.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from harness.kernel import build as kernel_build
from harness.kernel import source
from harness.paths import PROJECT_ROOT
from harness.run import run

REPEATS = 3
ONE_FILE = "net/mptcp/ctrl.c"
BASELINE_TIMEOUT = 3 * 3600.0


def _timed(action) -> tuple[float, float]:
    """Wall and CPU seconds (user + sys of waited-for children) of action()."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    action()
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _invoke_build(*args: str) -> None:
    """`invoke build ARGS` as a user runs it; a failure raises CommandError with its output."""
    run([sys.executable, "-m", "invoke", "build", *args], cwd=PROJECT_ROOT,
        timeout=BASELINE_TIMEOUT)


def one_file_patch(base: Path, token: str) -> str:
    """A unified diff that appends a real (if unused) definition to ONE_FILE of `base`.

    Appending a comment would not do: the preprocessor drops it, ccache would serve the old
    object and the measurement would skip the compiler.
    """
    lines = (base / ONE_FILE).read_text().splitlines()
    count = len(lines)
    return (f"--- a/{ONE_FILE}\n+++ b/{ONE_FILE}\n@@ -{count},1 +{count},3 @@\n"
            f" {lines[-1]}\n+\n"
            f"+static const char mptcp_lab_bench_edit[] __maybe_unused = \"{token}\";\n")


def _one_file_series(tmp: Path, base: Path, token: str) -> Path:
    """Our series plus a patch that changes ONE_FILE."""
    shutil.copytree(kernel_build.DEFAULT_PATCHES, tmp, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("configs"))
    (tmp / "9999-bench-one-file.patch").write_text(one_file_patch(base, token))
    with (tmp / "series").open("a") as series:
        series.write("\n9999-bench-one-file.patch\n")
    return tmp


def _seconds(values: list[float], digits: int = 0) -> str:
    runs = ", ".join(f"{v:.{digits}f}" for v in values)
    return f"median {statistics.median(values):.{digits}f} s (runs: {runs})"


def measure(cache: Path) -> Iterator[str]:
    """Run every case; yield one report line per case as soon as it is measured."""
    request = kernel_build.BuildRequest(cache=cache)
    src = source.debian(cache)
    build_dir = kernel_build.build_dir_of(request, src)
    yield f"kernel build times, {os.cpu_count()} CPUs, cache {cache}"

    shutil.rmtree(cache / "ccache", ignore_errors=True)
    shutil.rmtree(build_dir, ignore_errors=True)
    cold, cold_cpu = _timed(lambda: _invoke_build())
    yield (f"cold normal build (ccache cleared, empty build dir): {cold:.0f} s wall, "
           f"{cold_cpu:.0f} s CPU")

    noop = [_timed(lambda: _invoke_build())[0] for _ in range(REPEATS)]
    yield f"no-op rebuild (invoke build): {_seconds(noop, 2)}"

    one_file = []
    for serial in range(REPEATS):
        with tempfile.TemporaryDirectory(prefix="mlab-bench-") as tmp:
            token = f"{time.time_ns()}-{serial}"
            series = _one_file_series(Path(tmp), src.base, token)
            one_file.append(_timed(lambda s=series: _invoke_build("--patches", str(s)))[0])
    _invoke_build()  # back to our own series
    yield f"one {ONE_FILE} change rebuilt: {_seconds(one_file)}"

    baseline, baseline_cpu = _baseline_defconfig(src, cache / "build" / "bench-vng-defconfig")
    yield (f"baseline, virtme-ng --defconfig cold build (make bzImage, plain gcc): "
           f"{baseline:.0f} s wall, {baseline_cpu:.0f} s CPU")
    yield (f"ours / baseline: {cold / baseline:.0%} of the wall time, "
           f"{cold_cpu / baseline_cpu:.0%} of the CPU time")


def _baseline_defconfig(src: source.Source, build_dir: Path) -> tuple[float, float]:
    """Cold build of `virtme-configkernel --defconfig` (what `vng --build` configures) for
    the same tree, with plain gcc (no ccache) and the same -j."""
    shutil.rmtree(build_dir, ignore_errors=True)
    build_dir.mkdir(parents=True)
    configkernel = Path(sys.executable).with_name("virtme-configkernel")
    run([str(configkernel), "--defconfig", "--arch", "x86_64", f"O={build_dir}"],
        timeout=600, cwd=src.base)
    jobs = f"-j{os.cpu_count() or 1}"
    return _timed(lambda: run(["make", "-C", str(src.base), f"O={build_dir}", jobs,
                               "bzImage"], timeout=BASELINE_TIMEOUT))
