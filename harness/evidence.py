"""What a test leaves behind when it fails: one directory with what it takes to see why.

While a test runs, every link of every topology it builds is captured (tcpdump on one end
of the link, snaplen 200, at most MAX_PACKETS packets). When its topology comes down, each
namespace's MIB delta (MPTcpExt and TcpExt) is recorded and, if the test failed, `ss -Mtnia`
too. At the end of the test the pytest plugin adds the test's own output and, in the VM, the
kernel log of the test; all of it is written to the test's directory if the test failed
(or the run keeps passing tests' evidence too), and dropped otherwise.

The directory of a run is EVIDENCE_ENV (set by `invoke test`); a test's directory in it is
named after its JUnit classname and name, so the JUnit report can point at its files.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import xml.etree.ElementTree as ET
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from harness.capture import Capture
from harness.mptcp import mib
from harness.paths import REPORTS_DIR
from harness.report.junit import attachment_lines
from harness.run import run

EVIDENCE_ENV = "MPTCP_LAB_EVIDENCE"  # the run's evidence directory; unset: no evidence
KEEP_ENV = "MPTCP_LAB_KEEP_EVIDENCE"  # "1": keep the evidence of passing tests too
MAX_PACKETS = 50_000  # per link and test: at most about 10 MB of pcap at snaplen 200
KEEP_RUNS = 20  # run directories of one kind kept under reports/; older ones are removed
MIB_GROUPS = ("MPTcpExt", "TcpExt")
SS_ARGV = ["ss", "-M", "-t", "-n", "-i", "-a"]


def run_directory() -> Path | None:
    """Where this run keeps evidence (EVIDENCE_ENV), or None when it keeps none."""
    value = os.environ.get(EVIDENCE_ENV)
    return Path(value) if value else None


def keep_passing() -> bool:
    return os.environ.get(KEEP_ENV) == "1"


def junit_names(nodeid: str) -> tuple[str, str]:
    """(classname, name) that pytest's JUnit XML gives the test `nodeid`."""
    path, *rest = nodeid.split("::")
    module = path[:-3] if path.endswith(".py") else path
    parts = [module.replace("/", "."), *rest]
    return ".".join(parts[:-1]), parts[-1]


def directory_name(classname: str, name: str) -> str:
    """A file name for a test's evidence directory, from its JUnit classname and name."""
    return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", f"{classname}.{name}")


class TestEvidence:
    """The evidence of one test, gathered as it goes and written only if it is kept.

    Until finish(), texts stay in memory and pcaps in the captures' temporary directories
    (local to the machine: tcpdump writes a record a packet), so a passing test costs the
    captures and no file in the run's directory.
    """

    __test__ = False  # a harness class, not a pytest test class

    def __init__(self, directory: Path):
        self.directory = directory
        self._texts: dict[str, str] = {}
        self._captures: list[tuple[str, Capture]] = []
        self._topologies_built: Counter[str] = Counter()  # how many of each name the test built

    def add(self, filename: str, text: str) -> None:
        self._texts[filename] = text

    def finish(self, keep: bool) -> None:
        """Write everything into the directory if keep; free the captures either way."""
        try:
            if keep:
                self._write()
        finally:
            for _name, capture in self._captures:
                capture.close()
            self._captures.clear()

    def _write(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True)
        for filename, text in self._texts.items():
            (self.directory / filename).write_text(text)
        for filename, capture in self._captures:
            capture.stop()
            if capture.path.exists():
                shutil.copyfile(capture.path, self.directory / filename)

    def watch_topology(self, stack: ExitStack, topo, failed) -> None:
        """Capture topo's links and snapshot its MIBs now; at unwind of `stack` (before the
        topology comes down) stop the captures and record the MIB deltas, and `ss` when
        failed() says the test failed."""
        label = self._label(topo.name)
        captures = link_captures(topo, label)
        before = {host: mib.snapshot(topo.ns(host)) for host in topo.hosts}
        self._captures += captures
        for _name, capture in captures:
            capture.start()
            stack.callback(lambda c=capture: c.stop(drain=failed()))
        for _name, capture in captures:
            capture.wait_ready()
        stack.callback(self._record_namespaces, topo, label, before, failed)

    def _label(self, name: str) -> str:
        """What the files of a topology named `name` start with: the name, then name.2,
        name.3... for the next ones of that name the test builds, so that each keeps its
        own (a test that compares two schedulers builds the same topology twice)."""
        self._topologies_built[name] += 1
        built = self._topologies_built[name]
        return name if built == 1 else f"{name}.{built}"

    def _record_namespaces(self, topo, label: str, before: dict, failed) -> None:
        for host, earlier in before.items():
            later = mib.snapshot(topo.ns(host))
            self.add(f"{label}-{host}-mib.txt", mib_delta_text(earlier, later))
            if failed():
                result = run(SS_ARGV, ns=topo.ns(host), check=False)
                self.add(f"{label}-{host}-ss.txt", result.stdout + result.stderr)


def link_captures(topo, label: str | None = None) -> list[tuple[str, Capture]]:
    """A capture (not started) of one end of every link of a live topology, as a test's
    evidence has them, each with the name of its pcap (starting with label, by default the
    topology's name)."""
    label = label or topo.name
    return [(f"{label}-{host}-{iface}.pcap", Capture(ns, iface, max_packets=MAX_PACKETS))
            for host, ns, iface in link_capture_points(topo)]


def link_capture_points(topo) -> list[tuple[str, str, str]]:
    """(host, namespace, interface) of one end of every link of a live topology."""
    points = []
    for link in topo.spec.links:
        host = link.ends[0].host
        index = next(i for i, (other, _end) in enumerate(topo.spec.links_of(host))
                     if other is link)
        points.append((host, topo.ns(host), topo.interface(host, index)))
    return points


def mib_delta_text(before: mib.MibSnapshot, after: mib.MibSnapshot) -> str:
    """The counters that moved, one `Group.Name +change` per line, by group."""
    lines = []
    for group in MIB_GROUPS:
        moved = before.delta(after, group)
        lines += [f"{group}.{name} {change:+d}" for name, change in sorted(moved.items())]
    return "\n".join(lines) + "\n" if lines else "no counter moved\n"


def pytest_env(written: Path, keep_passing_tests: bool) -> dict[str, str]:
    """The environment that makes our pytest plugin keep evidence in `written`."""
    return {EVIDENCE_ENV: str(written), **({KEEP_ENV: "1"} if keep_passing_tests else {})}


def finish_run(written: Path, junit: Path | None) -> Path | None:
    """After the run: move its evidence under reports/ and point the JUnit file at it."""
    target = keep_run(written)
    if target is not None and junit is not None and junit.exists():
        attach_to_junit(junit, target)
    return target


def attach_to_junit(junit: Path, run_dir: Path) -> int:
    """Point each testcase of a pytest JUnit file that left evidence in run_dir at its files
    (attachment lines in its <system-out>); the number of testcases that got some."""
    tree = ET.parse(junit)
    attached = 0
    for case in tree.getroot().iter("testcase"):
        directory = run_dir / directory_name(case.get("classname", ""), case.get("name", ""))
        if not directory.is_dir():
            continue
        out = case.find("system-out")
        if out is None:
            out = ET.SubElement(case, "system-out")
        out.text = (out.text or "") + attachment_lines(sorted(directory.iterdir()))
        attached += 1
    tree.write(junit, encoding="utf-8", xml_declaration=True)
    return attached


def keep_run(written: Path, prefix: str = "test-", reports: Path = REPORTS_DIR) -> Path | None:
    """Move a run's evidence directory to reports/<prefix><time>/ (None when no test left
    any) and remove all but the newest KEEP_RUNS of that kind."""
    if not written.is_dir() or not any(written.iterdir()):
        shutil.rmtree(written, ignore_errors=True)
        return None
    target = run_directory_for(prefix, reports)
    shutil.move(written, target)
    return target


def run_directory_for(prefix: str, reports: Path = REPORTS_DIR) -> Path:
    """A new run directory reports/<prefix><time>/, not made yet, after removing all but
    the newest KEEP_RUNS - 1 of that kind."""
    reports.mkdir(parents=True, exist_ok=True)
    prune_runs(reports, prefix, KEEP_RUNS - 1)
    target = reports / f"{prefix}{time.strftime('%Y%m%d-%H%M%S')}"
    suffix = 1
    while target.exists():
        suffix += 1
        target = target.with_name(f"{target.name.split('.')[0]}.{suffix}")
    return target


def prune_runs(reports: Path, prefix: str, keep: int) -> None:
    """Remove all but the newest `keep` run directories named prefix* under reports."""
    runs = sorted((p for p in reports.glob(f"{prefix}[0-9]*") if p.is_dir()),
                  key=lambda p: p.stat().st_mtime)
    for old in runs[:-keep] if keep else runs:
        shutil.rmtree(old, ignore_errors=True)
