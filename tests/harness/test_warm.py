"""The guest's warm Python (harness.vm.warm), run here on the host: the server forks the
commands its clients hand it, a client without a server runs the command itself, and the
manifest tells the host when the server's modules went stale."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.paths import PROJECT_ROOT
from harness.vm import warm

MODULE = """\
import os, sys
print("ran", os.getpid(), sys.argv[1:], os.environ.get("WARM_TEST", ""), sep="|")
sys.exit(int(sys.argv[1]))
"""
# What the command writes: the bytes of its arguments, of one variable and of its directory
BYTES_MODULE = """\
import os, sys
sys.stdout.buffer.write(repr([os.fsencode(a) for a in sys.argv[1:]]
                             + [os.environb[b"WARM_BYTES"], os.getcwdb()]).encode())
"""
SERVER_START_TIMEOUT = 60.0


@pytest.fixture(params=["python", "c"])
def client(request, tmp_path) -> Path | None:
    """The client under test: the Python one (None) or the compiled C one."""
    return None if request.param == "python" else warm.compiled_client(tmp_path / "tools")


def run_client(socket_path: Path, cwd: Path, *args: str, client: Path | None = None,
               module: str = "probe", env: dict | None = None) -> subprocess.CompletedProcess:
    argv = warm.client_argv(sys.executable, module, list(args), str(socket_path), client)
    return subprocess.run(argv, cwd=cwd, capture_output=True, timeout=60,
                          env=env or {**os.environ, "WARM_TEST": "from the client"})


@pytest.fixture
def probe_dir(tmp_path) -> Path:
    (tmp_path / "probe.py").write_text(MODULE)
    return tmp_path


@pytest.fixture
def server(tmp_path):
    """A warm server on a socket in tmp_path: (socket path, manifest path)."""
    socket_path, manifest = tmp_path / "warm.sock", tmp_path / warm.MANIFEST
    process = subprocess.Popen(warm.server_argv(sys.executable, manifest, str(socket_path)),
                               cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while warm.Manifest.load(manifest) is None:
            assert process.poll() is None, f"the server exited with {process.returncode}"
            assert time.monotonic() < deadline, "the server wrote no manifest"
            time.sleep(0.05)
        yield socket_path, manifest, process.pid
    finally:
        process.kill()
        process.wait()


def test_the_server_forks_the_command_with_the_clients_streams_status_and_environment(
        server, probe_dir, client):
    socket_path, _manifest, server_pid = server
    done = run_client(socket_path, probe_dir, "3", "x", client=client)
    assert done.returncode == 3, done.stderr
    word, pid, args, env = done.stdout.decode().split("|")
    assert word == "ran" and int(pid) != server_pid
    assert args == "['3', 'x']" and env.strip() == "from the client"


def test_without_a_server_the_client_runs_the_command_itself(probe_dir, tmp_path, client):
    done = run_client(tmp_path / "no-server.sock", probe_dir, "4", client=client)
    assert done.returncode == 4, done.stderr
    assert done.stdout.startswith(b"ran|") and b"from the client" in done.stdout


def test_arguments_variables_and_directory_reach_the_command_byte_for_byte(
        server, tmp_path, client):
    """UTF-8 as it is, and bytes that are not UTF-8 at all, quotes, backslashes and control
    characters: what the command sees is what the client was given."""
    socket_path, _manifest, _pid = server
    odd = os.fsdecode(b"caf\xc3\xa9 \xff\xed\xa0\x80 \"q\" back\\slash tab\t")
    workdir = tmp_path / os.fsdecode(b"dir-\xe9")
    workdir.mkdir()
    (workdir / "probe_bytes.py").write_text(BYTES_MODULE)
    env = {**os.environ, "WARM_BYTES": odd}
    done = run_client(socket_path, workdir, odd, "\u00e9t\u00e9", "",
                      client=client, module="probe_bytes", env=env)
    assert done.returncode == 0, done.stderr
    expected = [os.fsencode(odd), "\u00e9t\u00e9".encode(), b"", os.fsencode(odd),
                os.fsencode(str(workdir))]
    assert done.stdout.decode() == repr(expected)


def test_the_manifest_names_what_the_server_imported_and_nothing_changed_since(server):
    _socket, manifest_path, server_pid = server
    manifest = warm.Manifest.load(manifest_path)
    assert manifest.pid == server_pid
    assert str(PROJECT_ROOT / "harness" / "topology" / "__init__.py") in manifest.files
    assert manifest.changed_files() == []


def test_a_file_changed_or_removed_after_the_launch_makes_the_manifest_stale(tmp_path):
    kept, edited, removed = (tmp_path / name for name in ("kept.py", "edited.py", "gone.py"))
    for path in (kept, edited, removed):
        path.write_text("x = 1\n")
    launched = time.time_ns()
    os.utime(kept, ns=(launched - 10**9, launched - 10**9))
    os.utime(edited, ns=(launched + 10**9, launched + 10**9))
    removed.unlink()
    manifest = warm.Manifest(1, launched, (str(kept), str(edited), str(removed)))
    assert manifest.changed_files() == [str(edited), str(removed)]


def test_a_missing_or_partial_manifest_is_none(tmp_path):
    assert warm.Manifest.load(tmp_path / "absent.json") is None
    (tmp_path / "partial.json").write_text('{"pid": 12, "launched_ns"')
    assert warm.Manifest.load(tmp_path / "partial.json") is None
