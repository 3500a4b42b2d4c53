"""`invoke repro BUNDLE`: build the bundle's kernel, boot it, run the bundle N times, judge.

Each run is one guest command (`python -m harness.repro.guest PLAN`: fresh topology, the
steps, the MIB/ss snapshots and pcaps) under the kernel-health oracle, so its settle step
(namespaces gone, deferred netns work done, kmemleak scanned on a debug kernel) belongs to
the run. A run that outlives its timeout is a hang (blocked tasks dumped with SysRq-w); a
guest that dies is a panic; either way the VM is restarted for the next run. The evidence of
run N lands in `reports/repro-<name>-<time>/run-NN/`: step outputs, the console slice with
splats decoded, pcaps, MIB delta, `ss` before and after; `summary.md` and `junit.xml` beside.
With coverage (the coverage variant), each run's gcov counters of net/mptcp are kept in
`gcov/run-NN/` and turned into a coverage report (`coverage-<time>/`) beside them.

The VM is named "repro": the user's own VM (`invoke boot`) is left as it is.
"""

from __future__ import annotations

import json
import shutil
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from harness import backports, evidence
from harness.coverage import report as coverage_report
from harness.coverage.counters import Counters
from harness.coverage.errors import CoverageError
from harness.errors import HarnessError
from harness.kernel import build as kernel_build
from harness.kernel import worktree
from harness.kernel.layout import build_dir_of
from harness.kernel.selftests_build import build_selftests
from harness.paths import REPORTS_DIR
from harness.report.junit import attachment_lines
from harness.repro.bundle import Bundle, BundleError
from harness.repro.guest import SETTLE_FILE, Plan
from harness.repro.verdict import RunResult, StepOutcome, Verdict, judge, signature
from harness.run import CommandError, run
from harness.vm import decode, machine, settle, vmcore
from harness.vm.oracle import Splat
from harness.vm.ssh import CommandTimeout

VM_NAME = "repro"
REPORTS = REPORTS_DIR
COMPILE_TIMEOUT = 300.0


@dataclass(frozen=True)
class ReproOptions:
    runs: int | None = None  # None: the bundle's count
    until_reproduced: bool = False
    without_patches: bool = False  # the fixed kernel: expected not to reproduce
    tree: str | None = None  # overrides of the bundle's [kernel]
    commit: str | None = None
    patches: Path | None = None
    variant: str | None = None
    junit: Path | None = None
    quiet: bool = False
    coverage: bool = False  # gcov counters of net/mptcp per run: the coverage variant


COVERAGE_VARIANT = "coverage"
GCOV_DIR = "gcov"  # in the report directory: the counters of each run, run-NN/


def kernel_request(bundle: Bundle, cache: Path, options: ReproOptions
                   ) -> kernel_build.BuildRequest:
    """What to build: the bundle's [kernel], overridden by the command line."""
    spec = bundle.kernel
    tree, commit = options.tree or spec.tree, options.commit or spec.commit
    if commit and not tree:
        raise BundleError(f"{bundle.path}: a commit needs a tree (--tree or kernel.tree)")
    if tree and commit:
        tree = str(worktree.checkout(tree, commit, cache))
    patches = None if options.without_patches else (options.patches or spec.patches)
    return kernel_build.BuildRequest(
        cache=cache, tree=tree, patches_dir=patches, no_patches=patches is None,
        variant=_variant(bundle, options), config_items=spec.config, purpose="repro")


def _variant(bundle: Bundle, options: ReproOptions) -> str:
    """The command line's variant, else the bundle's; with coverage, the coverage variant
    (another one is refused: only it has gcov counters to read)."""
    if not options.coverage:
        return options.variant or bundle.kernel.variant
    if options.variant not in (None, COVERAGE_VARIANT):
        raise BundleError(f"--coverage needs the {COVERAGE_VARIANT} variant, not "
                          f"--variant {options.variant}")
    return COVERAGE_VARIANT


def describe_kernel(request: kernel_build.BuildRequest, release: str) -> str:
    source = f"tree {request.tree}" if request.tree else "Debian's source"
    patches = f"patches {request.patches_dir}" if request.patches_dir else "no patches"
    config = f", config {' '.join(request.config_items)}" if request.config_items else ""
    return f"{release} ({request.variant}) from {source}, {patches}{config}"


def compile_c_steps(bundle: Bundle, directory: Path) -> dict[str, str]:
    """Each C step compiled here (static, so it runs in the guest as it is)."""
    binaries = {}
    for step in bundle.steps:
        if step.kind != "c":
            continue
        directory.mkdir(parents=True, exist_ok=True)
        binary = directory / step.name
        try:
            run(["gcc", "-O1", "-static", "-pthread", "-o", str(binary), step.target],
                timeout=COMPILE_TIMEOUT)
        except CommandError as err:
            raise BundleError(f"{step.target}: the C reproducer of step {step.name!r} does "
                              f"not compile:\n{err.stderr.strip()}") from None
        binaries[step.name] = str(binary)
    return binaries


def new_report_dir(bundle: Bundle, root: Path = REPORTS) -> Path:
    """reports/repro-<bundle>-<time>/, made; the bundle's older ones beyond the newest
    KEEP_RUNS are removed."""
    directory = evidence.run_directory_for(f"repro-{bundle.name}-", root)
    directory.mkdir(parents=True)
    return directory


class ReproVm:
    """The reproduction's VM, booted on demand and restarted after a hang or a panic."""

    def __init__(self, options: machine.BootOptions, cache: Path):
        self.options, self.cache = options, cache
        self.vm: machine.Vm | None = None
        self.traces_decoded: dict[tuple[str, ...], str] = {}  # trace key -> the run with it

    def decoded(self, splat: Splat, run: str) -> str:
        """The splat with its trace decoded, unless a splat of an earlier run had the same
        trace (the decode script takes about a second a splat, and a bug that reproduces
        N times often splats alike N times): then a pointer to that run's decoded one."""
        key = decode.trace_key(splat.text)
        if key and key in self.traces_decoded:
            return (f"{splat.text}\n(the same trace as in {self.traces_decoded[key]}: "
                    f"decoded in its splats.txt)")
        if key:
            self.traces_decoded[key] = run
        return decode.decode(splat.text, self.options.image)  # the VM may be gone

    def get(self) -> machine.Vm:
        if self.vm is None:
            self.vm = machine.boot(self.options, self.cache, VM_NAME)
            self.vm.check_runs_its_image()
        return self.vm

    def restart(self) -> None:
        machine.halt(self.cache, VM_NAME)
        self.vm = None

    def console_since(self, offset: int) -> str:
        """The console from offset on, also after a halt moved it aside."""
        live = self.vm.console if self.vm else None
        path = live if live and live.exists() else \
            machine.kept_path(self.cache, VM_NAME, machine.LAST_CONSOLE)
        if not path.exists():
            return ""
        with path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")


def run_bundle(bundle: Bundle, cache: Path, options: ReproOptions) -> Verdict:
    """Build, boot, run; write the evidence and the summary; return the verdict."""
    request = kernel_request(bundle, cache, options)
    if options.coverage and bundle.kernel.variant != request.variant:
        _say(options, f"repro: --coverage builds the {request.variant} variant, not the "
                      f"bundle's {bundle.kernel.variant}: what only that one detects (KASAN, "
                      f"kmemleak, lockdep) cannot reproduce")
    report_dir = new_report_dir(bundle)
    binaries = compile_c_steps(bundle, report_dir / "bin")  # a broken bundle fails first
    built = kernel_build.build(request)
    return run_on_kernel(bundle, request, built, cache, options, report_dir, binaries)


def run_on_kernel(bundle: Bundle, request: kernel_build.BuildRequest,
                  built: kernel_build.BuildResult, cache: Path, options: ReproOptions,
                  report_dir: Path, binaries: dict[str, str]) -> Verdict:
    """The runs of a bundle on a kernel already built (bisect builds its own)."""
    image = Path(built.record.image)
    boot = machine.BootOptions(image=image, timeout=machine.boot_timeout_for(image))
    holder = ReproVm(boot, cache)
    try:
        vm = holder.get()
        kernel = describe_kernel(request, vm.kernel_release())
        plan = plan_for(bundle, vm, binaries, cache)
        verdict = Verdict(bundle, kernel, not options.without_patches, [])
        _say(options, f"repro: {bundle.name} on {kernel}; evidence in {report_dir}")
        for index in range(1, (options.runs or bundle.runs) + 1):
            result = one_run(index, bundle, holder, plan, report_dir, options.coverage)
            verdict.runs.append(result)
            _say(options, "repro: " + result.line())
            if options.until_reproduced and result.reproduced:
                break
    finally:
        holder.restart()  # halts it: a reproduction leaves no VM behind
    write_reports(verdict, report_dir, options.junit)
    if options.coverage:
        coverage = _coverage_report(report_dir, built, bundle)
        with (report_dir / "summary.md").open("a") as summary:
            summary.write(f"\n## Coverage of net/mptcp\n\n{coverage.index}\n\n"
                          f"```\n{coverage.summary}\n```\n")
        _say(options, f"repro: coverage of net/mptcp ({coverage.index}):\n{coverage.summary}")
    return verdict


def plan_for(bundle: Bundle, vm: machine.Vm, binaries: dict[str, str], cache: Path) -> Plan:
    """What the guest runner needs for each run of the bundle (its output directory is set
    per run)."""
    return Plan(str(bundle.path), "", binaries, _selftests_dir(bundle, vm),
                tuple(backports.path_dirs(cache)))


def _selftests_dir(bundle: Bundle, vm: machine.Vm) -> str | None:
    if not any(step.kind == "selftest" for step in bundle.steps):
        return None
    suite = build_selftests(vm.image)
    missing = [s.target for s in bundle.steps
               if s.kind == "selftest" and s.target not in suite.scripts]
    if missing:
        raise BundleError(f"{bundle.path}: selftest {missing[0]!r} is not in the kernel's "
                          f"suite ({', '.join(suite.scripts)})")
    return str(suite.directory)


def run_name(index: int) -> str:
    """The name of run `index`'s directory, in the VM's exchange directory and in the report."""
    return f"run-{index:02d}"


def one_run(index: int, bundle: Bundle, holder: ReproVm, plan: Plan,
            report_dir: Path, coverage: bool = False) -> RunResult:
    vm = holder.get()
    counters = Counters.of(vm) if coverage else None
    if counters:
        counters.reset()
    out = vm.exchange_dir / run_name(index)
    plan_file = vm.exchange_dir / f"plan-{index:02d}.json"
    plan_file.write_text(json.dumps(asdict(replace(plan, out=str(out)))))
    console_start, start = vm.console_size(), time.monotonic()
    result = RunResult(index, 0.0)
    runner_text, dump = "", None
    try:
        report = vm.run_module("harness.repro.guest", [str(plan_file)], bundle.run_timeout)
        result.splats, runner_text = list(report.splats), report.stdout
        if report.returncode != 0:
            raise HarnessError(f"the reproduction runner failed in the guest (exit "
                               f"{report.returncode}); the run says:\n{report.stdout}")
    except CommandTimeout as err:
        result.hang, runner_text = True, err.output
        result.note = f"hung: cut after {bundle.run_timeout} s, VM restarted"
        holder.restart()
    except machine.GuestDied as err:
        result.died, result.splats, runner_text = True, list(err.splats), str(err)
        result.note = "the guest died, VM restarted"
        holder.vm, dump = None, err.vmcore
    result.duration_s = time.monotonic() - start
    if counters and not (result.hang or result.died):  # else the kernel and its counters are gone
        _keep_counters(counters, out.name, report_dir / GCOV_DIR)
    directory = report_dir / run_name(index)
    _collect(out, directory)
    if dump is not None and not any(report_dir.glob(f"run-*/{vmcore.DUMP}")):
        vmcore.move(dump, directory / vmcore.DUMP)  # the first only: each is hundreds of MB
    result.splats += _settle_splats(directory)
    result.steps = _steps(directory)
    (directory / "runner.txt").write_text(runner_text)
    (directory / "console.txt").write_text(holder.console_since(console_start))
    _write_splats(holder, result, directory)
    return judge(result, bundle.expect)


def _keep_counters(counters: Counters, part: str, kept: Path) -> None:
    """The run's counters, out of the VM's exchange directory (a restart empties it)."""
    counters.collect(part)
    kept.mkdir(exist_ok=True)
    shutil.move(str(counters.directory / part), kept / part)


def _coverage_report(report_dir: Path, built: kernel_build.BuildResult,
                     bundle: Bundle) -> coverage_report.Report:
    counters = report_dir / GCOV_DIR
    if not counters.is_dir():
        raise CoverageError(
            f"no run of {bundle.name} left gcov counters (each hung or killed its guest)")
    return coverage_report.write(counters, build_dir_of(Path(built.record.image)),
                                 f"net/mptcp, repro {bundle.name}", reports=report_dir)


def _collect(out: Path, directory: Path) -> None:
    if out.exists():
        shutil.move(str(out), directory)
    directory.mkdir(parents=True, exist_ok=True)


def _settle_splats(directory: Path) -> list[Splat]:
    """The leaks found by the settle step the runner ran itself (none if it did not get
    that far: then the command's own settle step ran it, in the command's splats)."""
    path = directory / SETTLE_FILE
    if not path.exists():
        return []
    found = json.loads(path.read_text())
    return settle.splats(found["status"], found["report"])


def _steps(directory: Path) -> list[StepOutcome]:
    listing = directory / "steps.json"
    if not listing.exists():
        return []
    steps = []
    for item in json.loads(listing.read_text()):
        output = directory / item["output"] if item["output"] else None
        text = output.read_text(errors="replace") if output and output.exists() else ""
        steps.append(StepOutcome(item["name"], item["status"], item["duration_s"],
                                 item["cut"], text))
    return steps


def _write_splats(holder: ReproVm, result: RunResult, directory: Path) -> None:
    if not result.splats:
        return
    blocks = [f"### {signature(s)}\n{holder.decoded(s, directory.name)}"
              for s in result.splats]
    (directory / "splats.txt").write_text("\n\n".join(blocks) + "\n")


def write_reports(verdict: Verdict, report_dir: Path, junit: Path | None) -> None:
    (report_dir / "summary.md").write_text(verdict.summary_markdown())
    xml = junit_tree(verdict, report_dir)
    xml.write(report_dir / "junit.xml", encoding="utf-8", xml_declaration=True)
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        xml.write(junit, encoding="utf-8", xml_declaration=True)


def junit_tree(verdict: Verdict, report_dir: Path) -> ET.ElementTree:
    """One test case for the verdict (failed when not as expected), one per run (its
    result, and the files of its evidence directory as attachments)."""
    suite = ET.Element("testsuite", name=f"repro.{verdict.bundle.name}",
                       tests=str(len(verdict.runs) + 1),
                       failures="0" if verdict.as_expected else "1",
                       time=f"{sum(r.duration_s for r in verdict.runs):.1f}")
    case = ET.SubElement(suite, "testcase", classname=f"repro.{verdict.bundle.name}",
                         name="verdict")
    if not verdict.as_expected:
        ET.SubElement(case, "failure", message=verdict.headline())
    ET.SubElement(case, "system-out").text = verdict.summary_markdown()
    for run_result in verdict.runs:
        run_case = ET.SubElement(suite, "testcase", classname=f"repro.{verdict.bundle.name}",
                                 name=run_name(run_result.index),
                                 time=f"{run_result.duration_s:.1f}")
        evidence = report_dir / run_name(run_result.index)
        files = sorted(p for p in evidence.iterdir() if p.is_file()) if evidence.is_dir() else []
        ET.SubElement(run_case, "system-out").text = \
            f"{run_result.line()}\n{attachment_lines(files)}"
    return ET.ElementTree(suite)


def _say(options: ReproOptions, text: str) -> None:
    if not options.quiet:
        print(text, flush=True)
