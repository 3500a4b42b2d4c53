"""SSH to the guest with paramiko: keys made for one VM, commands with exit status, streamed
output and timeouts, and file copy both ways.

The client key and the guest's host key are generated for each boot (ed25519, files of mode
0600 in the VM's run directory, which `halt` removes). The client trusts only that host key,
and never looks at the user's own keys or agent.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import logging
import os
import shlex
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness import interrupts
from harness.errors import HarnessError

# paramiko's transport thread logs (with tracebacks) every refused early connection while
# the guest boots; our own errors say what failed, so its log stays quiet.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").setLevel(logging.CRITICAL)

GUEST_USER = "root"
CONNECT_TIMEOUT = 2.0
CONNECT_TIMEOUT_MAX = 30.0  # a debug kernel's guest sshd takes seconds to start a session
TERM_GRACE_S = 10  # a command given SIGTERM may clean up (a test: its namespaces) this long
KILL_TIMEOUT = TERM_GRACE_S + 5.0
PGID_DIR = "/run"  # the guest's own tmpfs
Output = Callable[[str], None]


class SshError(HarnessError):
    pass


class ConnectionLost(SshError):
    """The guest stopped answering in the middle of a command (it panicked, or was halted)."""


class CommandTimeout(SshError):
    def __init__(self, command: str, timeout: float, output: str, kept: bool = False):
        self.command, self.timeout, self.output, self.kept = command, timeout, output, kept
        super().__init__(f"guest command timed out after {timeout:.0f} s: {command}"
                         + (f"\n{KEPT_HINT}" if kept else ""))


KEPT_HINT = ("--keep-on-hang: the command is left as it is, in the VM, which stays up: "
             "invoke shell, invoke inspect or invoke gdb (debug variant) to look at it, "
             "invoke halt to stop it")


@dataclass(frozen=True)
class GuestResult:
    command: str
    status: int
    output: str  # stdout and stderr, interleaved as the guest wrote them


def _in_own_session(command: str, pgid_file: str) -> str:
    """`command` as the leader of a new session whose id (= its process group) is written
    to pgid_file, so the whole group can be killed later; the exit status is kept."""
    inner = f"echo $$ > {pgid_file}; exec sh -c {shlex.quote(command)}"
    return (f"setsid -w sh -c {shlex.quote(inner)}; status=$?; rm -f {pgid_file}; "
            f"exit $status")


def write_key_pair(private_path: Path) -> str:
    """Write a new ed25519 private key (mode 0600, OpenSSH format) to private_path and its
    public key next to it (.pub); return the public key line."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    private_path.with_suffix(".pub").write_text(public + "\n")
    return public


def free_local_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (QEMU binds it next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Guest:
    """An SSH session to the guest on 127.0.0.1:port."""

    def __init__(self, port: int, client_key: Path, host_public_key: str,
                 connect_timeout: float = CONNECT_TIMEOUT):
        self.port = port
        self.client = paramiko.SSHClient()
        key_type, key_data = host_public_key.split()[:2]
        host_key = paramiko.Ed25519Key(data=base64.b64decode(key_data))
        self.client.get_host_keys().add(f"[127.0.0.1]:{port}", key_type, host_key)
        self.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        self.client.connect("127.0.0.1", port=port, username=GUEST_USER,
                            pkey=paramiko.Ed25519Key.from_private_key_file(str(client_key)),
                            look_for_keys=False, allow_agent=False, timeout=connect_timeout,
                            banner_timeout=connect_timeout, auth_timeout=connect_timeout)
        self.client.get_transport().set_keepalive(5)
        self._serial = 0

    def close(self) -> None:
        self.client.close()

    def alive(self) -> bool:
        transport = self.client.get_transport()
        return transport is not None and transport.is_active()

    def run(self, command: str | Sequence[str], timeout: float, output: Output | None = None,
            before_kill: Callable[[], str] | None = None,
            keep_on_timeout: bool = False, more_time: Callable[[], float] | None = None,
            label: str | None = None) -> GuestResult:
        """Run command (a shell string, or an argv list quoted for the guest's shell) and
        return its status and output; stream output as it arrives when `output` is given.

        Raises CommandTimeout after `timeout` seconds, once `before_kill` (if given: its
        text is added to the output) has run and the command's process group is killed
        (left running with keep_on_timeout, for a person to look at the hang); the group
        is killed on Ctrl-C too. Raises ConnectionLost if the guest goes away first.
        `more_time`, asked once when the timeout has passed, gives the seconds the command
        may still take (a line whose own part ended, followed by a step with its own
        timeout), 0 for none. Errors name the command as `label` (default: command).
        """
        if not isinstance(command, str):
            command = shlex.join(str(a) for a in command)
        label = label or command
        try:
            channel = self.client.get_transport().open_session(timeout=CONNECT_TIMEOUT)
        except (paramiko.SSHException, OSError, AttributeError) as err:
            raise ConnectionLost(f"guest SSH session lost before: {label} ({err})") from err
        channel.set_combine_stderr(True)
        channel.settimeout(0.2)
        self._serial += 1
        pgid_file = f"{PGID_DIR}/mptcp-lab-{os.getpid()}-{self._serial}.pgid"
        channel.exec_command(_in_own_session(command, pgid_file))
        try:
            return self._collect(channel, label, _Deadline(timeout, more_time), output)
        except CommandTimeout as err:
            extra = before_kill() if before_kill else ""
            if not keep_on_timeout:
                self._kill_group(pgid_file)  # a cut command must not live on
            raise CommandTimeout(err.command, err.timeout, err.output + extra,
                                 kept=keep_on_timeout) from None
        except KeyboardInterrupt:
            with interrupts.held():  # the command cleans up (SIGTERM) before we go on
                self._kill_group(pgid_file)
            raise
        finally:
            channel.close()

    def _kill_group(self, pgid_file: str) -> None:
        """SIGTERM, then SIGKILL, the process group of a command we gave up on (best effort:
        a task in D state cannot die; the guest may be gone)."""
        group = f'"-$(cat {pgid_file})"'
        script = (f"[ -s {pgid_file} ] || exit 0; kill -TERM {group} 2>/dev/null; "
                  f"for i in $(seq {TERM_GRACE_S * 10}); do "
                  f"kill -0 {group} 2>/dev/null || break; sleep 0.1; done; "
                  f"kill -KILL {group} 2>/dev/null; rm -f {pgid_file}")
        with contextlib.suppress(Exception):
            channel = self.client.get_transport().open_session(timeout=CONNECT_TIMEOUT)
            channel.exec_command(script)
            deadline = time.monotonic() + KILL_TIMEOUT
            while not channel.exit_status_ready() and time.monotonic() < deadline:
                time.sleep(0.05)
            channel.close()

    def _collect(self, channel: paramiko.Channel, command: str, deadline: _Deadline,
                 output: Output | None) -> GuestResult:
        chunks: list[str] = []
        decoder = _Utf8Stream()
        while True:
            try:
                data = channel.recv(65536)
            except TimeoutError:
                data = None
            except OSError as err:
                raise ConnectionLost(f"guest connection lost during: {command} ({err})") from err
            if data:
                text = decoder.feed(data)
                chunks.append(text)
                if output:
                    output(text)
                continue
            if data == b"" or channel.exit_status_ready():
                break
            if not self.alive():
                raise ConnectionLost(f"guest connection lost during: {command}")
            if deadline.passed():  # run() kills the command, then closes
                raise CommandTimeout(command, deadline.allowed, "".join(chunks))
        status = self._exit_status(channel, command, deadline)
        return GuestResult(command, status, "".join(chunks))

    def _exit_status(self, channel: paramiko.Channel, command: str, deadline: _Deadline) -> int:
        while not channel.exit_status_ready():
            if not self.alive() or deadline.passed():
                raise ConnectionLost(f"guest connection lost during: {command}")
            time.sleep(0.02)
        status = channel.recv_exit_status()
        if status == -1:  # the channel closed without an exit-status message
            raise ConnectionLost(f"guest connection lost during: {command}")
        return status

    def put(self, local: Path, remote: str) -> None:
        with self.client.open_sftp() as sftp:
            sftp.put(str(local), remote)

    def get(self, remote: str, local: Path) -> None:
        with self.client.open_sftp() as sftp:
            sftp.get(remote, str(local))


class _Deadline:
    """A command's timeout, which `more_time` (asked once, when it has passed) may extend."""

    def __init__(self, timeout: float, more_time: Callable[[], float] | None):
        self.allowed = timeout
        self._end = time.monotonic() + timeout
        self._more_time = more_time

    def passed(self) -> bool:
        if time.monotonic() <= self._end:
            return False
        extra, self._more_time = (self._more_time() if self._more_time else 0.0), None
        self.allowed += extra
        self._end += extra
        return time.monotonic() > self._end


class _Utf8Stream:
    """Decode UTF-8 that arrives in arbitrary chunks (a character may be split)."""

    def __init__(self):
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        return self._decoder.decode(data)
