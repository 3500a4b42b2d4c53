"""A client of QEMU's machine protocol (QMP) on the VM's private Unix socket.

QMP is JSON lines: a greeting, then `qmp_capabilities`, then commands ({"execute": ...}),
each answered by {"return": ...} or {"error": ...}, with asynchronous {"event": ...} lines
in between. Only what the harness needs: run a command, wait for an event.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from harness.errors import HarnessError


class QmpError(HarnessError):
    pass


class Qmp:
    def __init__(self, path: Path, timeout: float):
        """Connect to the socket at `path`, waiting up to `timeout` s for QEMU to make it."""
        deadline = time.monotonic() + timeout
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if time.monotonic() > deadline:
                    raise QmpError(f"no QMP socket at {path} within {timeout:.0f} s") from None
                time.sleep(0.1)
        self.reader = self.sock.makefile("r", encoding="utf-8")
        self.events: list[dict] = []
        self._message()  # the greeting
        self.execute("qmp_capabilities")

    def execute(self, command: str, **arguments) -> object:
        """Run a QMP command; return its "return" value, raise QmpError on its "error"."""
        request = {"execute": command, **({"arguments": arguments} if arguments else {})}
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        while True:
            message = self._message()
            if "event" in message:
                self.events.append(message)
            elif "error" in message:
                error = message["error"]
                raise QmpError(f"QMP {command}: {error.get('class')}: {error.get('desc')}")
            elif "return" in message:
                return message["return"]

    def wait_event(self, names: set[str]) -> dict | None:
        """The next event named in `names` (those seen while a command ran come first);
        None when QEMU closes the connection (it exited)."""
        while self.events:
            event = self.events.pop(0)
            if event["event"] in names:
                return event
        while True:
            try:
                message = self._message()
            except QmpError:
                return None
            if message.get("event") in names:
                return message

    def _message(self) -> dict:
        line = self.reader.readline()
        if not line:
            raise QmpError("QEMU closed the QMP connection")
        return json.loads(line)
