"""Wait for a condition with a deadline instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from harness.errors import HarnessError

T = TypeVar("T")
POLL_INTERVAL = 0.01


class WaitTimeout(HarnessError):
    pass


def wait_until(condition: Callable[[], T], timeout: float, what: str) -> T:
    """Poll condition() until it returns something truthy; return it, or raise WaitTimeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL_INTERVAL)
