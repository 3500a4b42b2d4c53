"""What one run of a reproduction costs on a booted VM beyond its steps (the loop that
`invoke repro` and each step of `invoke bisect` repeat).

The bundle's kernel is built (or reused) as `invoke repro` builds it and booted in a
scratch state directory (a VM the user has up is left alone). One run warms the VM up (the
guest's warm Python starts with it), then each measured run is timed on the host and split:
- the steps: the guest runner's "steps" phase, from the first step's start to the end of
  the last foreground one;
- the guest runner around them: the topology built and removed, the captures, the MIB and
  `ss` snapshots, the background steps stopped (its phases.json);
- the guest command around the runner: SSH, the fork from the warm Python, the settle step
  and the console sync (the command's time minus the runner's phases);
- the host after the command: the evidence moved out of the exchange directory, the
  console slice, the splats decoded.
The overhead is the whole run minus its steps.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from harness.bench import Timings
from harness.errors import HarnessError
from harness.kernel import build as kernel_build
from harness.repro.bundle import Bundle
from harness.repro.guest import PHASES_FILE
from harness.repro.verdict import RunResult
from harness.runs import repro
from harness.vm import machine

WIDTH = 46


def _phases(report_dir: Path, result: RunResult) -> dict[str, float]:
    path = report_dir / repro.run_name(result.index) / PHASES_FILE
    if result.hang or result.died or not path.exists():
        raise HarnessError(f"run {result.index} of the bundle did not complete ({result.line()}): "
                           f"the benchmark needs runs that end on their own")
    return json.loads(path.read_text())


def _timed_runs(bundle: Bundle, built: kernel_build.BuildResult, cache: Path, runs: int,
                scratch: Path) -> list[tuple[float, RunResult, dict[str, float]]]:
    """(wall time on the host, the run's result, its phases) of each measured run."""
    report_dir = scratch / "report"
    binaries = repro.compile_c_steps(bundle, report_dir / "bin")
    image = Path(built.record.image)
    boot = machine.BootOptions(image=image, timeout=machine.boot_timeout_for(image),
                               accel=machine.choose_accel(image, cache))
    holder = repro.ReproVm(boot, scratch)  # the VM's state in scratch: none of the user's
    measured = []
    try:
        plan = repro.plan_for(bundle, holder.get(), binaries, cache)
        repro.one_run(0, bundle, holder, plan, report_dir)  # starts the warm Python
        for index in range(1, runs + 1):
            start = time.monotonic()
            result = repro.one_run(index, bundle, holder, plan, report_dir)
            wall = time.monotonic() - start
            measured.append((wall, result, _phases(report_dir, result)))
    finally:
        holder.restart()  # halts it
    return measured


def measure(bundle: Bundle, cache: Path, runs: int = 5) -> list[Timings]:
    request = repro.kernel_request(bundle, cache, repro.ReproOptions())
    built = kernel_build.build(request)
    with tempfile.TemporaryDirectory(prefix="bench-repro-", dir=cache) as scratch:
        measured = _timed_runs(bundle, built, cache, runs, Path(scratch))
    walls = [wall for wall, _, _ in measured]
    steps = [phases["steps"] for _, _, phases in measured]
    runner = [sum(phases.values()) - phases["steps"] for _, _, phases in measured]
    command = [result.duration_s - sum(phases.values()) for _, result, phases in measured]
    host = [wall - result.duration_s for wall, result, _ in measured]
    reproduced = sum(result.reproduced for _, result, _ in measured)
    around = [Timings(f"    {name}", [phases[name] for _, _, phases in measured], WIDTH)
              for name in measured[0][2] if name != "steps"]
    return [Timings(f"one run of {bundle.name}, wall", walls, WIDTH),
            Timings("  its steps", steps, WIDTH),
            Timings("  the guest runner around them", runner, WIDTH), *around,
            Timings("  the command: SSH, fork, settle, console", command, WIDTH),
            Timings("  the host: evidence, console, splats", host, WIDTH),
            Timings(f"  overhead (wall - steps; {reproduced}/{runs} reproduced)",
                    [wall - phases["steps"] for wall, _, phases in measured], WIDTH)]
