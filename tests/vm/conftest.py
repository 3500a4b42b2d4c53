"""Fixtures for tests that boot our kernel in VMs of their own (run by `invoke oracle`).

Each VM lives in a cache directory of the test session, so a VM the user has up
(`invoke boot`) is neither reused nor stopped. The kernel is the last one `invoke build` made.
"""

from __future__ import annotations

import pytest

from harness.kernel import build as kernel_build
from harness.kernel.build import last_image
from harness.paths import cache_dir
from harness.vm import machine


@pytest.fixture(scope="session")
def kernel_image():
    image = last_image(cache_dir())
    if not image.is_file():
        pytest.fail(f"no kernel image at {image}: run `invoke build` first")
    return image


@pytest.fixture
def variant_image():
    """variant_image(name) -> the image of that variant's build of the default source; the
    test skips, saying how to build it, when it is not built (CI builds only the normal
    variant)."""
    def image_of(variant: str):
        image = kernel_build.image_path(kernel_build.BuildRequest(cache=cache_dir(),
                                                                  variant=variant))
        if not image.is_file():
            pytest.skip(f"no {variant} kernel at {image}: invoke build --variant {variant}")
        return image

    return image_of


SHARED_PARTS = ("src", "build", "ccache", "tools")


@pytest.fixture
def sharing_cache(tmp_path):
    """A cache for `invoke` sharing the real cache's source, builds, ccache and tools, with
    VM directories of its own (so the user's VM is neither reused nor stopped)."""
    real = cache_dir()
    directory = tmp_path / "cache"
    directory.mkdir()
    for part in SHARED_PARTS:
        (directory / part).symlink_to(real / part)
    return directory


@pytest.fixture(scope="session")
def vm_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("vm-cache")


@pytest.fixture
def boot_vm(kernel_image, vm_cache):
    """boot_vm(**BootOptions fields) -> a booted Vm; every VM is halted after the test."""
    def boot(**options):
        return machine.boot(machine.BootOptions(**{"image": kernel_image, **options}), vm_cache)

    yield boot
    machine.halt(vm_cache)
    assert machine.running(vm_cache) is None
