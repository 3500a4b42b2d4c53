"""`invoke shell`: an interactive shell in the VM over paramiko, with a pty of the terminal's
size, the local terminal in raw mode while it lasts."""

from __future__ import annotations

import os
import select
import shutil
import sys
import termios
import tty

from harness.vm.ssh import Guest

SHELL = "exec /bin/bash -l"  # root's login shell is /bin/sh in the guest (see guest-sshd)


def interactive(guest: Guest) -> int:
    """Run a login shell in the guest attached to this terminal; return its exit status."""
    columns, lines = shutil.get_terminal_size()
    channel = guest.client.get_transport().open_session()
    channel.get_pty(term=os.environ.get("TERM", "vt100"), width=columns, height=lines)
    channel.exec_command(SHELL)
    stdin = sys.stdin.fileno()
    saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None
    try:
        if saved is not None:
            tty.setraw(stdin)
        _pump(channel, stdin)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
    return channel.recv_exit_status()


def _pump(channel, stdin: int) -> None:
    while True:
        readable, _, _ = select.select([channel, stdin], [], [], 1.0)
        if channel in readable:
            data = channel.recv(4096)
            if not data:
                return
            os.write(sys.stdout.fileno(), data)
        if stdin in readable:
            data = os.read(stdin, 1024)
            if not data:
                channel.shutdown_write()
            else:
                channel.sendall(data)
        if channel.exit_status_ready() and not channel.recv_ready():
            return
