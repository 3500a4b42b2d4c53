"""A kernel built without MPTCP (`invoke build --variant no-mptcp`): applications that ask
for MPTCP get EPROTONOSUPPORT, and plain TCP works. The variant is a build of its own (six
minutes cold), so CI does not build it: without its image this test skips and says how to
build it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.kernel import build as kernel_build
from harness.paths import cache_dir

CHECK = Path(__file__).with_name("data") / "no_mptcp_check.py"


@pytest.fixture
def no_mptcp_image():
    image = kernel_build.image_path(kernel_build.BuildRequest(cache=cache_dir(),
                                                              variant="no-mptcp"))
    if not image.is_file():
        pytest.skip(f"no CONFIG_MPTCP=n kernel at {image}: invoke build --variant no-mptcp")
    return image


def test_mptcp_sockets_are_refused_and_tcp_works(boot_vm, no_mptcp_image):
    vm = boot_vm(image=no_mptcp_image)
    report = vm.run([sys.executable, str(CHECK)], timeout=120)
    output = report.stdout
    assert report.returncode == 0 and report.splats == [], output
    assert "MPTCP socket: EPROTONOSUPPORT" in output
    assert "TCP: 4194304 bytes intact" in output
