"""A warm Python in the guest: imports paid once per boot, a fork per command.

Under emulation, starting the project's Python in the guest and importing the toolkit over
9p costs tens of seconds (pyroute2 alone imports for most of it). The server here is
started once per VM with the heavy modules imported; each command is a small client
(`python3 -S -E`, the system's interpreter without site: no import of ours) that hands the
server its argv, working directory, environment and its own stdin/stdout/stderr (file
descriptors over a Unix socket), and waits for the exit status. The server forks: the
child runs `python -m MODULE ARGS` with those descriptors, in a session of its own. When
the client goes away (killed with its process group by a timeout or Ctrl-C on the host),
the server kills the child's group.

The server is single-threaded (fork and threads do not mix): one select loop over the
listening socket, the clients' connections and a pidfd per child, which becomes readable
the moment the child exits: its status goes back at once, not at the loop's next tick.

Once it listens, the server writes a manifest (MANIFEST, in the VM's exchange directory,
which the host reads directly): its pid, the host's time when it was launched, and every
file it imported. The host checks it before each command instead of asking the guest:
when a file changed after the launch (a test helper edited while the VM is up), the
server's modules are stale and the host starts a new server. A client that finds no
server runs the command in a Python of its own: slower, never wrong.

The client is a small C program (warm_client.c, compiled on the host once per version of
its source and copied into the VM's exchange directory), as even `python3 -S -E` takes a
few tenths of a second to start in the guest. CLIENT below is the same client in Python;
the tests run both.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import runpy
import select
import signal
import socket
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

SOCKET = "/run/mptcp-lab-warm.sock"
# Bytecode of what the commands import after the preload (test modules, as pytest rewrites
# their asserts), kept in the guest's tmpfs: the project is shared read-only, and without a
# place to write it every run would compile them again.
PYCACHE = "/run/mptcp-lab-pycache"
MANIFEST = "warm.json"
PRELOAD = ("harness.repro.guest", "harness.topology", "harness.mptcp.pm", "harness.traffic",
           "pytest", "harness.pytest_plugin",
           "pdb", "readline")  # what pytest's debugging and capture plugins import at start
MAX_REQUEST = 1 << 20

# The client, run by the guest's own python3 with -S -E: only the standard library, and
# only what that interpreter starts fast with.
CLIENT = r"""
import array, json, os, socket, sys
path, python, module, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
cwd, env = os.getcwd(), dict(os.environ)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(path)
except OSError:
    os.execv(python, [python, "-m", module, *args])
request = json.dumps({"module": module, "args": args, "cwd": cwd, "env": env}).encode()
s.sendmsg([request + b"\n"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0, 1, 2]))])
reply = b""
while not reply.endswith(b"\n"):
    chunk = s.recv(64)
    if not chunk:
        sys.exit("mptcp-lab warm server: the connection closed without an exit status")
    reply += chunk
sys.exit(int(reply))
"""


CLIENT_SOURCE = Path(__file__).with_name("warm_client.c")
CLIENT_BINARY = "warm-client"  # and the digest of its source
COMPILE_TIMEOUT = 120.0


def client_argv(python: str, module: str, args: list[str], socket_path: str = SOCKET,
                client: Path | None = None) -> list[str]:
    """`python -m module args` as run by the warm server, in the client's directory and
    environment (by `python` itself when no server answers); by the compiled `client`, or
    else by the Python one."""
    if client is not None:
        return [str(client), socket_path, python, module, *args]
    return ["python3", "-S", "-E", "-c", CLIENT, socket_path, python, module, *args]


def compiled_client(tools_dir: Path) -> Path:
    """The C client compiled from its current source, in tools_dir (made once per version)."""
    from harness.run import run

    digest = hashlib.sha256(CLIENT_SOURCE.read_bytes()).hexdigest()[:12]
    binary = tools_dir / f"{CLIENT_BINARY}-{digest}"
    if not binary.exists():
        tools_dir.mkdir(parents=True, exist_ok=True)
        partial = binary.with_name(f"{binary.name}.{os.getpid()}.partial")
        run(["gcc", "-O2", "-Wall", "-o", str(partial), str(CLIENT_SOURCE)],
            timeout=COMPILE_TIMEOUT)
        partial.replace(binary)
    return binary


def server_argv(python: str, manifest: Path, socket_path: str = SOCKET) -> list[str]:
    """The server's command; `manifest` is written once it serves (see the module's doc),
    with the time of this call as its launch time."""
    return [python, "-m", "harness.vm.warm", socket_path, str(manifest), str(time.time_ns())]


@dataclass(frozen=True)
class Manifest:
    """What a started server wrote: its pid, its launch time (host clock), its files."""

    pid: int
    launched_ns: int
    files: tuple[str, ...]

    @classmethod
    def load(cls, path: Path) -> Manifest | None:
        try:
            data = json.loads(path.read_text())
            return cls(int(data["pid"]), int(data["launched_ns"]), tuple(data["files"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent, or not completely written yet

    def changed_files(self) -> list[str]:
        """The files the server imported that changed (or went) since it was launched."""
        changed = []
        for name in self.files:
            try:
                if os.stat(name).st_mtime_ns > self.launched_ns:
                    changed.append(name)
            except OSError:
                changed.append(name)
        return changed


# ---- the server, in the guest ----
def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds = b"", []
    while not data.endswith(b"\n"):
        message, ancillary, _flags, _addr = conn.recvmsg(MAX_REQUEST, socket.CMSG_LEN(64))
        if not message:
            raise ConnectionError("the client closed before its request")
        data += message
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += list(memoryview(payload).cast("i"))
    return json.loads(data), fds


def _child(request: dict, fds: list[int]) -> None:
    """In the forked child: become the command. Never returns."""
    code = 1
    try:
        os.setsid()
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        for fd in fds:
            os.close(fd)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.chdir(request["cwd"])
        sys.path[0] = request["cwd"]  # as `python -m` started there would have it
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [request["module"], *request["args"]]
        warnings.filterwarnings("ignore", category=RuntimeWarning, module="runpy")  # preloaded
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own streams
        sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if not isinstance(done.code, int | None):
            print(done.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - reported as python -m would
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _status_of(wait_status: int) -> int:
    code = os.waitstatus_to_exitcode(wait_status)
    return code if code >= 0 else 128 - code


def _imported_files() -> list[str]:
    files = (getattr(module, "__file__", None) for module in list(sys.modules.values()))
    return sorted({name for name in files if isinstance(name, str) and os.path.isabs(name)})


def _write_manifest(path: Path, launched_ns: int) -> None:
    data = {"pid": os.getpid(), "launched_ns": launched_ns, "files": _imported_files()}
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data))
    partial.replace(path)  # the host never reads half of it


def _preload() -> None:
    for module in PRELOAD:
        importlib.import_module(module)
    from _pytest.config import default_plugins  # pytest's own, which every run registers

    for name in default_plugins:
        importlib.import_module(f"_pytest.{name}")


def serve(path: str, manifest: Path, launched_ns: int) -> None:
    _preload()  # with the bytecode the host wrote beside the sources
    sys.pycache_prefix = PYCACHE  # for what the children import; invalidated by source mtime
    sys.dont_write_bytecode = False
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    children: dict[int, Child] = {}  # pid -> its client's connection and pidfd
    _write_manifest(manifest, launched_ns)
    print(f"warm: serving on {path}", flush=True)
    while True:
        watched = [listener, *(c.conn for c in children.values()),
                   *(c.pidfd for c in children.values())]
        ready, _, _ = select.select(watched, [], [])  # all it waits for is watched
        for item in ready:
            if item is listener:
                _accept(listener, children)
            elif isinstance(item, socket.socket):  # a client closed (or wrote) before its
                pid = next(p for p, c in children.items() if c.conn is item)  # command ended
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        _reap(children)


@dataclass(frozen=True)
class Child:
    conn: socket.socket  # to its client, which waits for the exit status
    pidfd: int  # readable once the child has exited


def _accept(listener: socket.socket, children: dict[int, Child]) -> None:
    conn, _ = listener.accept()
    try:
        request, fds = _receive(conn)
    except (ConnectionError, ValueError, OSError):
        conn.close()
        return
    pid = os.fork()
    if pid == 0:
        listener.close()
        conn.close()
        _child(request, fds)
    for fd in fds:
        os.close(fd)
    children[pid] = Child(conn, os.pidfd_open(pid))


def _reap(children: dict[int, Child]) -> None:
    for pid in list(children):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == 0:
            continue
        child = children.pop(pid)
        os.close(child.pidfd)
        with contextlib.suppress(OSError):
            child.conn.sendall(f"{_status_of(status)}\n".encode())
        child.conn.close()


if __name__ == "__main__":
    serve(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]))  # as server_argv() gives them
    sys.exit(0)
