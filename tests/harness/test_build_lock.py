"""The cache's build lock, between real processes: a second build waits for the first and
says whom it waits for; the lock dies with its holder, however it ends."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.kernel import build_lock

# holds the lock of the build directory argv[1] until the file argv[2] appears
HOLDER = """
import sys, time
from pathlib import Path
from harness.kernel import build_lock
with build_lock.held(Path(sys.argv[1]), "holder"):
    print("held", flush=True)
    while not Path(sys.argv[2]).exists():
        time.sleep(0.05)
"""


def start_holder(builds: Path, release: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(builds), str(release)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    return holder


def test_a_second_build_waits_for_the_first_and_names_it(tmp_path):
    builds, release = tmp_path / "build", tmp_path / "release"
    holder = start_holder(builds, release)
    said = []

    def say(text):
        said.append(text)
        release.touch()  # the holder ends once we are waiting

    start = time.monotonic()
    with build_lock.held(builds, "build of x", say=say):
        waited = time.monotonic() - start
        assert holder.wait(timeout=10) == 0  # we hold it only after the holder let go
        assert "pid " in (builds / build_lock.LOCK_NAME).read_text()
    assert len(said) == 1 and said[0].startswith("build of x: waiting for the build lock")
    assert f"held by pid {holder.pid} (-c " in said[0]
    assert waited < 10
    assert (builds / build_lock.LOCK_NAME).read_text() == ""  # released: nobody named


def test_a_holder_killed_outright_leaves_the_lock_free(tmp_path):
    builds = tmp_path / "build"
    holder = start_holder(builds, tmp_path / "never")
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    said = []
    with build_lock.held(builds, "build", say=said.append):
        pass
    assert said == []


def test_a_build_inside_a_build_of_the_same_process_does_not_wait_for_itself(tmp_path):
    builds = tmp_path / "build"
    with build_lock.held(builds, "outer"), build_lock.held(builds, "inner", say=print):
        assert "pid " in (builds / build_lock.LOCK_NAME).read_text()
