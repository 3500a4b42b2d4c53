"""The one command runner: argv lists only, an optional network namespace, a timeout.

A failing command raises CommandError whose text shows the command, its exit code,
stdout and stderr, so a test failure explains itself.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


class CommandError(HarnessError):
    def __init__(self, argv: Sequence[str], returncode: int | None, stdout: str, stderr: str,
                 reason: str = ""):
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        status = reason or f"exit code {returncode}"
        super().__init__(
            f"command failed ({status}): {' '.join(self.argv)}\n"
            f"--- stdout ---\n{stdout.rstrip()}\n--- stderr ---\n{stderr.rstrip()}"
        )


class ToolMissing(HarnessError):
    def __init__(self, tool: str):
        super().__init__(f"required tool '{tool}' is not installed (run: invoke setup)")


def netns_argv(argv: Sequence[str], ns: str | None) -> list[str]:
    """Return argv wrapped so that it runs inside network namespace ns (if given)."""
    argv = [str(a) for a in argv]
    if ns is None:
        return argv
    return ["ip", "netns", "exec", ns, *argv]


def run(argv: Sequence[str], ns: str | None = None, timeout: float = DEFAULT_TIMEOUT,
        check: bool = True, input: str | None = None, cwd: str | Path | None = None) -> Result:
    """Run argv (optionally in namespace ns) to completion and return its Result.

    Raises CommandError when the command exits non-zero (unless check=False) or when it
    outlives timeout seconds (it is killed first); ToolMissing when argv[0] is not installed.
    """
    if not argv:
        raise ValueError("run() needs a non-empty argv list")
    if isinstance(argv, str):
        raise TypeError("run() takes an argv list, not a shell string")
    full = netns_argv(argv, ns)
    if shutil.which(full[0]) is None:
        raise ToolMissing(full[0])
    try:
        proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise CommandError(full, None, _text(exc.stdout), _text(exc.stderr),
                           reason=f"timed out after {timeout:g} s") from None
    if check and proc.returncode != 0:
        raise CommandError(full, proc.returncode, proc.stdout, proc.stderr)
    return Result(full, proc.returncode, proc.stdout, proc.stderr)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data
