"""The coverage package's error: a refused run, an empty collection, a bad report."""

from harness.errors import HarnessError


class CoverageError(HarnessError):
    pass
