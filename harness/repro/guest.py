"""One run of a bundle, inside the guest: `python -m harness.repro.guest PLAN.json`.

The host writes the plan (the bundle directory, the run's output directory in the VM's
exchange directory, compiled C programs, the installed selftests) and reads back what this
writes there: `steps.json` (status, duration, whether cut, per step), each step's output,
`phases.json` (seconds spent in each phase: topology, captures, snapshots, steps,
stop-background, teardown, settle), `settle.json` (the settle step, run here after the
topology is removed),
`mib-before.json`/`mib-after.json` and `mib-delta.txt`, `sockets-before.txt`/`sockets-after.txt`,
and a pcap per link of the topology. The topology is built fresh and removed at the end
(also when a step fails or the run is interrupted); background steps are stopped first.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import interrupts, topology
from harness.capture import Capture, Drain, stop_all
from harness.mptcp import mib, socket_listing
from harness.repro.bundle import Step, load
from harness.run import netns_argv
from harness.runs.selftest_plan import Slot, command_line
from harness.vm import settle

CUT_STATUS = 124  # as timeout(1) reports a command it cut
STOP_GRACE_S = 5.0
CLEAR_WARN_ONCE = Path("/sys/kernel/debug/clear_warn_once")
PHASES_FILE = "phases.json"  # seconds per phase of the run, beside steps.json
SETTLE_FILE = "settle.json"  # the settle step's status and report, beside steps.json


@dataclass
class StepResult:
    name: str
    status: int | None  # None: not run (an earlier foreground step failed)
    duration_s: float = 0.0
    cut: bool = False
    output: str = ""  # file name in the run directory


@dataclass(frozen=True)
class Plan:
    bundle: str
    out: str
    binaries: dict[str, str]  # step name -> compiled C program
    selftests_dir: str | None = None
    path_dirs: tuple[str, ...] = ()  # first on PATH (newer iproute2 for the selftests)

    @classmethod
    def read(cls, path: Path) -> Plan:
        data = json.loads(path.read_text())
        return cls(**{**data, "path_dirs": tuple(data.get("path_dirs", ()))})


def step_argv(step: Step, plan: Plan) -> tuple[list[str], str | None]:
    """The argv of a step and the directory it runs in."""
    if step.kind == "run":
        return list(step.target), None
    if step.kind == "shell":
        return ["bash", step.target, *step.args], None
    if step.kind == "python":
        return [sys.executable, step.target, *step.args], None
    if step.kind == "c":
        return [plan.binaries[step.name], *step.args], None
    directory = Path(plan.selftests_dir or "")
    return command_line(directory, Slot(step.target, step.args)), str(directory)


def _environment(step: Step, plan: Plan) -> dict[str, str]:
    path = os.pathsep.join((*plan.path_dirs, os.environ.get("PATH", "")))
    return {**os.environ, "PATH": path, **step.env}


class Runner:
    def __init__(self, plan: Plan, topo: topology.Topo | None):
        self.plan, self.topo = plan, topo
        self.out = Path(plan.out)
        self.background: list[tuple[StepResult, subprocess.Popen, float]] = []

    def ns(self, step: Step) -> str | None:
        return self.topo.ns(step.host) if step.host and self.topo else None

    def start(self, step: Step) -> tuple[StepResult, subprocess.Popen]:
        argv, cwd = step_argv(step, self.plan)
        result = StepResult(step.name, None, output=f"step-{step.name}.out")
        log = (self.out / result.output).open("wb")
        with log:
            proc = subprocess.Popen(netns_argv(argv, self.ns(step)), stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=cwd, env=_environment(step, self.plan),
                                    start_new_session=True)
        return result, proc

    def run_step(self, step: Step) -> StepResult:
        start = time.monotonic()
        result, proc = self.start(step)
        if step.background:
            self.background.append((result, proc, start))
            return result
        try:
            result.status = proc.wait(timeout=step.timeout)
        except subprocess.TimeoutExpired:
            result.status, result.cut = CUT_STATUS, True
        finally:
            _stop_group(proc)
        result.duration_s = time.monotonic() - start
        return result

    def stop_background(self) -> None:
        for result, proc, start in self.background:
            result.cut = proc.poll() is None
            result.status = _stop_group(proc)
            result.duration_s = time.monotonic() - start


def _stop_group(proc: subprocess.Popen) -> int:
    """TERM the step's process group, KILL what outlives the grace; return its status."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_GRACE_S)
            if sig == signal.SIGTERM:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # its children, if any are left
                break
    return proc.wait()


def _namespaces(topo: topology.Topo | None) -> dict[str, str | None]:
    if topo is None:
        return {"init": None}
    return {host: topo.ns(host) for host in topo.hosts}


def _snapshot(topo: topology.Topo | None, out: Path, when: str) -> dict[str, mib.MibSnapshot]:
    """The MIB counters and the TCP and MPTCP sockets of each host, read in this process."""
    namespaces = _namespaces(topo)
    snapshots = {host: mib.snapshot(ns) for host, ns in namespaces.items()}
    sockets = [f"### {host}\n{socket_listing.listing(ns)}\n" for host, ns in namespaces.items()]
    (out / f"mib-{when}.json").write_text(json.dumps(
        {host: snap.groups for host, snap in snapshots.items()}, indent=1))
    (out / f"sockets-{when}.txt").write_text("\n".join(sockets))
    return snapshots


def _mib_delta(before: dict, after: dict) -> str:
    lines = []
    for host in after:
        for group in ("MPTcpExt", "TcpExt", "Tcp"):
            moved = before[host].delta(after[host], group)
            lines += [f"{host} {group} {name} {change:+d}"
                      for name, change in sorted(moved.items())]
    return "\n".join(lines) + "\n"


def _captures(topo: topology.Topo | None) -> list[tuple[str, Capture]]:
    """A capture on one end of every link (it sees both directions)."""
    if topo is None:
        return []
    found = []
    for index, link in enumerate(topo.spec.links):
        host = link.ends[0].host
        iface = topo.interface_of(host, str(link.ends[0].addresses[0].ip))
        found.append((f"link{index}-{host}-{iface}", Capture(topo.ns(host), iface, bpf=())))
    return found


def rearm_warn_once() -> None:
    """Let WARN_ON_ONCE() sites fire again: every run of a VM must be able to warn, not only
    its first (most MPTCP warnings are WARN_ON_ONCE)."""
    if CLEAR_WARN_ONCE.exists():
        CLEAR_WARN_ONCE.write_text("1\n")


class Phases:
    """Seconds spent in each phase of a run (the overhead around the steps, measured)."""

    def __init__(self):
        self.times: dict[str, float] = {}
        self._mark = time.monotonic()

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.times[name] = self.times.get(name, 0.0) + now - self._mark
        self._mark = now

    def line(self) -> str:
        return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.times.items())

    def write(self, directory: Path) -> None:
        (directory / PHASES_FILE).write_text(json.dumps(self.times, indent=1))


def run(plan: Plan, phases: Phases) -> list[StepResult]:
    bundle = load(plan.bundle)
    out = Path(plan.out)
    out.mkdir(parents=True, exist_ok=True)
    rearm_warn_once()
    building = topology.build(bundle.topology) if bundle.topology else contextlib.nullcontext()
    with building as topo, contextlib.ExitStack() as stack:
        phases.done("topology")
        captures = _captures(topo)
        for _name, capture in captures:  # all started first, so that they start in parallel
            capture.start()
            stack.callback(capture.close)
        phases.done("captures")
        before = _snapshot(topo, out, "before")  # while tcpdump starts: nothing is sent yet
        phases.done("snapshots")
        for _name, capture in captures:
            capture.wait_ready()
        phases.done("captures")
        runner = Runner(plan, topo)
        results: list[StepResult] = []
        failed = False  # after a foreground step fails, the later ones are not run
        try:
            for step in bundle.steps:
                result = StepResult(step.name, None) if failed else runner.run_step(step)
                results.append(result)
                failed = failed or (not step.background and result.status != 0)
        finally:
            phases.done("steps")
            runner.stop_background()
            phases.done("stop-background")
            drain = Drain([capture for _name, capture in captures])  # watched meanwhile
            after = _snapshot(topo, out, "after")
            (out / "mib-delta.txt").write_text(_mib_delta(before, after))
            phases.done("snapshots")
            stop_all(drain.captures, drain)
            for name, capture in captures:
                if capture.path.exists():
                    shutil.copyfile(capture.path, out / f"{name}.pcap")
            phases.done("captures")
            (out / "steps.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
    phases.done("teardown")
    return results


def settle_after(namespaces_before: list[str], out: Path) -> None:
    """The settle step, in this process (no process started, see settle.settle_here), its
    status and report in SETTLE_FILE for the host. Once it has finished, the command's own
    settle step is told not to do it again ($MPTCP_LAB_SETTLED_FILE)."""
    status, report = settle.settle_here(namespaces_before)
    (out / SETTLE_FILE).write_text(json.dumps({"status": status, "report": report}))
    settled_file = os.environ.get(settle.SETTLED_ENV)
    if status == 0 and settled_file:
        Path(settled_file).touch()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m harness.repro.guest PLAN.json", file=sys.stderr)
        return 2
    interrupts.stop_on_signals()  # SIGTERM unwinds too: the topology is removed
    phases, plan = Phases(), Plan.read(Path(argv[0]))
    namespaces_before = settle.named_namespaces()
    results = run(plan, phases)
    settle_after(namespaces_before, Path(plan.out))
    phases.done("settle")
    phases.write(Path(plan.out))
    for result in results:
        status = "not run" if result.status is None else f"exit {result.status}"
        print(f"repro: step {result.name}: {status}{' (cut)' if result.cut else ''} "
              f"in {result.duration_s:.1f} s")
    print(f"repro: time per phase: {phases.line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
