"""The guest side of the kernel-health oracle: read what the kernel logs during each test.

Inside the VM (MPTCP_LAB_VM=1 in the environment of the test run), the pytest plugin marks
each test's start and end in the kernel log and reads /dev/kmsg after it: a splat logged
while the test ran fails that test. The host watches the console as well, so a panic that
kills the guest still reaches the report.
"""

from __future__ import annotations

import errno
import os

from harness.vm import oracle

GUEST_ENV = "MPTCP_LAB_VM"
BUILD_RECORD_ENV = "MPTCP_LAB_BUILD_RECORD"  # the booted kernel's build record, for the tests
KMSG = "/dev/kmsg"


def in_guest() -> bool:
    return os.environ.get(GUEST_ENV) == "1"


def record_line(record: str) -> str:
    """'6,1234,2739364,-;WARNING: ...' (and its ' KEY=value' lines) as console text."""
    header, _, message = record.partition(";")
    fields = header.split(",")
    micros = int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else 0
    first = message.split("\n", 1)[0]
    return f"[{micros // 1_000_000:5d}.{micros % 1_000_000:06d}] {first}"


class KernelLog:
    """/dev/kmsg opened at its end: `new_lines()` returns what was logged since last read."""

    def __init__(self, path: str = KMSG):
        self._fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        os.lseek(self._fd, 0, os.SEEK_END)

    def close(self) -> None:
        os.close(self._fd)

    def mark(self, text: str) -> None:
        os.write(self._fd, f"{oracle.MARKER_PREFIX} {text}".encode()[:900])

    def new_lines(self) -> list[str]:
        lines = []
        while True:
            try:
                record = os.read(self._fd, 8192)
            except OSError as err:
                if err.errno == errno.EAGAIN:
                    return lines
                if err.errno == errno.EPIPE:  # records overwritten before we read them
                    lines.append("[    0.000000] mptcp-lab: kernel log records were lost")
                    continue
                raise
            lines.append(record_line(record.decode(errors="replace")))

    def splats(self) -> list[oracle.Splat]:
        return oracle.find_splats(self.new_lines())
