from harness.errors import HarnessError


class KernelError(HarnessError):
    """A problem with the kernel source, a patch, the configuration or the build."""
