"""`invoke repro` on bundles whose outcome we control: a WARNING from a C program after a
ping across a topology, a hang, a bundle that cannot reproduce, broken bundles.

They run on the normal build (our series), shared with the real cache; each reproduction
boots and halts a VM of its own ("repro"), which must not outlive it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.paths import PROJECT_ROOT
from harness.repro.guest import CUT_STATUS, PHASES_FILE, SETTLE_FILE
from harness.vm import machine

DATA = Path(__file__).parent / "data"


@pytest.fixture
def cache(sharing_cache):
    """A cache sharing the real one's source, builds and ccache, with VMs of its own."""
    cache = sharing_cache
    yield cache
    assert machine.running(cache, "repro") is None
    assert machine.processes_mentioning(cache) == []


def repro(cache, *args, timeout=900):
    env = {**os.environ, "INVOKE_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", "invoke", "repro", *map(str, args)],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def evidence_dir(output: str) -> Path:
    line = next(x for x in output.splitlines() if "evidence in " in x)
    return Path(line.rsplit("evidence in ", 1)[1].strip())


def test_a_warning_from_a_c_reproducer_is_reproduced_with_its_evidence(cache, tmp_path):
    junit = tmp_path / "repro.xml"
    done = repro(cache, DATA / "repro-warning", "--runs", "1", "--junit", junit)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "repro-warning: reproduced 1/1: WARNING: at drivers/misc/lkdtm/bugs.c" in done.stdout
    run = evidence_dir(done.stdout) / "run-01"
    assert "lkdtm_WARNING" in (run / "splats.txt").read_text()
    assert "lkdtm_WARNING" in (run / "console.txt").read_text()
    assert "1 received" in (run / "step-ping.out").read_text()
    pcaps = sorted(p.name for p in run.glob("*.pcap"))
    assert pcaps == ["link0-client-eth0.pcap", "link1-client-eth1.pcap"]
    assert (run / "link0-client-eth0.pcap").stat().st_size > 24  # more than the header
    assert (run / "mib-before.json").exists() and (run / "sockets-after.txt").exists()
    phases = json.loads((run / PHASES_FILE).read_text())
    assert list(phases) == ["topology", "captures", "snapshots", "steps", "stop-background",
                            "teardown", "settle"]
    assert phases["steps"] > 0 and all(seconds >= 0 for seconds in phases.values())
    assert json.loads((run / SETTLE_FILE).read_text()) == {"status": 0, "report": ""}
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "0" and suite.get("tests") == "2"


def test_a_hang_is_a_result_and_the_vm_is_restarted_for_the_next_run(cache):
    done = repro(cache, DATA / "repro-hang")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "repro-hang: reproduced 2/2: hang" in done.stdout
    assert done.stdout.count("hung: cut after 15 s, VM restarted") == 2
    run = evidence_dir(done.stdout) / "run-01"
    assert "blocked tasks (SysRq-w)" in (run / "runner.txt").read_text()


def test_a_bundle_that_does_not_reproduce_exits_1(cache, tmp_path):
    bundle = tmp_path / "quiet"
    bundle.mkdir()
    (bundle / "repro.toml").write_text(
        f'summary = "nothing goes wrong"\n[kernel]\npatches = "{PROJECT_ROOT}/kernel_patches"\n'
        f'variant = "normal"\n[[steps]]\nname = "cut"\nrun = ["sleep", "30"]\ntimeout = 2\n'
        f'[expect]\nany_splat = true\n[runs]\ncount = 1\n')
    done = repro(cache, bundle)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "quiet: not reproduced 0/1 — NOT as expected" in done.stdout
    steps = (evidence_dir(done.stdout) / "run-01" / "steps.json").read_text()
    assert f'"status": {CUT_STATUS}' in steps and '"cut": true' in steps


def test_a_c_reproducer_that_does_not_compile_is_a_broken_bundle(cache, tmp_path):
    bundle = tmp_path / "broken"
    bundle.mkdir()
    (bundle / "repro.c").write_text("int main(void) { return missing; }\n")
    (bundle / "repro.toml").write_text(
        'summary = "x"\n[kernel]\nvariant = "normal"\n[[steps]]\nc = "repro.c"\n'
        '[expect]\nany_splat = true\n')
    done = repro(cache, bundle, "--patches", PROJECT_ROOT / "kernel_patches")
    assert done.returncode == 2
    assert "repro.c: the C reproducer of step 'step-1' does not compile" in done.stderr
    assert "undeclared" in done.stderr and "Traceback" not in done.stderr
