"""A kernel built without MPTCP (`invoke build --variant no-mptcp`): applications that ask
for MPTCP get EPROTONOSUPPORT, and plain TCP works. The variant is a build of its own (six
minutes cold), so CI does not build it: without its image this test skips and says how to
build it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

CHECK = Path(__file__).with_name("data") / "no_mptcp_check.py"


@pytest.fixture
def no_mptcp_image(variant_image):
    return variant_image("no-mptcp")


def test_mptcp_sockets_are_refused_and_tcp_works(boot_vm, no_mptcp_image):
    vm = boot_vm(image=no_mptcp_image)
    report = vm.run([sys.executable, str(CHECK)], timeout=120)
    output = report.stdout
    assert report.returncode == 0 and report.splats == [], output
    assert "MPTCP socket: EPROTONOSUPPORT" in output
    assert "TCP: 4194304 bytes intact" in output
