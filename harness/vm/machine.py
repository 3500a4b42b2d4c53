"""One background VM: our kernel under QEMU through virtme-ng, reached over SSH.

`boot()` starts virtme-ng detached (its own session, console to a log file), with the host's
filesystem shared read-only at the same paths (so the project and its virtualenv are where
they are on the host), a writable exchange directory, and a user-mode NIC whose port 22 is
forwarded from 127.0.0.1 only. The guest runs `guest-sshd`. The VM's state (pid, console log,
SSH port, keys) is kept in `<cache>/<name>/` (name "vm" for the user's VM; other names let
a second kernel be up at once, e.g. a reproduction's), so `invoke exec`, `shell`, `test` and
`halt` find it; `halt()` kills the process group and removes that directory, keys included.

The public interface of a booted VM (`Vm`): `run(argv)` runs one guest command under the
kernel-health oracle and returns a `CommandReport`, the host runner's `Result` plus the
splats that the console shows between the command's start and a sync marker written to
/dev/kmsg after its settle step; it dumps blocked tasks (SysRq-w) when the command times out
and reports the panic when the guest dies under it. `image`, `build_record()`,
`exchange_dir` (a directory both sides read and write at the same path), `copy_in` and
`copy_out`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness import interrupts
from harness.errors import HarnessError
from harness.kernel import layout
from harness.kernel.layout import record_path_of, uts_version
from harness.kernel.record import BuildRecord
from harness.paths import PROJECT_ROOT
from harness.run import Result
from harness.vm import accel, decode, gdb, oracle, settle, ssh, vmcore, warm
from harness.vm.ssh import (
    CommandTimeout,
    ConnectionLost,
    Guest,
    Output,
    SshError,
    free_local_port,
    write_key_pair,
)

GUEST_SCRIPT = Path(__file__).with_name("guest-sshd")
GUEST_MAC = "52:54:00:6d:6c:01"
DEFAULT_NAME = "vm"  # the user's VM: invoke boot, exec, shell, test, halt
BOOT_TIMEOUT = 60.0
DEBUG_BOOT_TIMEOUT = 180.0  # KASAN, kmemleak and friends under emulation: measured 45-70 s
SYNC_TIMEOUT = 10.0
WARM_TIMEOUT = 180.0  # the guest's Python importing the toolkit over 9p, under emulation
# A KASAN kernel (the debug variant: kmemleak, lockdep, UBSAN, slub debug) under emulation
# runs a process start 4-7 times slower than ours (python3 -c pass: 7 s against 1.2 s)
SANITIZED_SLOWDOWN = 5.0
LAST_LINES = 25
LAST_CONSOLE = "vm-last-console.log"  # kept in the cache after halt, for a post-mortem
LAST_VMCORE = "vm-last-vmcore"  # the memory of the last guest that panicked (see vmcore.py)
END_WAIT = 10.0  # seconds QEMU gets to end after the guest died
DUMP_WAIT = 120.0  # ... while the watcher writes its memory (2 GiB: 9 s measured)
# Failures must be loud: an oops panics, so do hung tasks and soft lockups; SysRq is open for
# the blocked-task dump; our /dev/kmsg markers must not be rate limited.
# KUnit: the MPTCP suites run at boot and can be run again through debugfs (invoke kunit).
KUNIT_CMDLINE = ("kunit.enable=1", "kunit.filter_glob=mptcp*")
LOUD_CMDLINE = ("oops=panic", "softlockup_panic=1", "hung_task_panic=1",
                "sysrq_always_enabled=1", "printk.devkmsg=on", "net.ifnames=0")


def boot_timeout_for(image: Path) -> float:
    return DEBUG_BOOT_TIMEOUT if layout.is_sanitized(image) else BOOT_TIMEOUT


class VmError(HarnessError):
    pass


class BootFailed(VmError):
    pass


class GuestDied(VmError):
    def __init__(self, message: str, splats: list[oracle.Splat], vmcore: Path | None = None):
        self.splats = splats
        self.vmcore = vmcore  # the guest's memory at its panic, when it was dumped
        super().__init__(message)


@dataclass
class VmState:
    pid: int
    image: str
    image_mtime_ns: int
    run_dir: str
    console: str
    ssh_port: int
    client_key: str
    host_public_key: str
    accel: str
    cpus: int
    memory: str
    argv: list[str]

    @staticmethod
    def path(run_dir: Path) -> Path:
        return run_dir / "state.json"

    def save(self) -> None:
        self.path(Path(self.run_dir)).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, run_dir: Path) -> VmState | None:
        path = cls.path(run_dir)
        return cls(**json.loads(path.read_text())) if path.exists() else None


@dataclass(frozen=True)
class BootOptions:
    image: Path
    cpus: int = 2
    memory: str = "2G"
    timeout: float = BOOT_TIMEOUT
    append: tuple[str, ...] = ()  # extra kernel command-line options
    qemu_opts: tuple[str, ...] = ()  # extra QEMU arguments
    accel: str | None = None  # "kvm" or "tcg"; None: KVM if the probe says it runs our kernel


@dataclass(frozen=True)
class CommandReport(Result):
    """A guest command's result, in the host runner's shape (stdout holds stdout and stderr
    interleaved as the guest wrote them; stderr is empty), with what the oracle saw."""
    splats: list[oracle.Splat] = field(default_factory=list)  # during it or its settle step
    settle: str = ""  # what the settle step found: namespaces left behind, kmemleak output

    @property
    def failed(self) -> bool:
        return self.returncode != 0 or bool(self.splats)


def _stat(proc: Path) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...)."""
    try:
        return (proc / "stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _alive(pid: int) -> bool:
    fields = _stat(Path(f"/proc/{pid}"))
    return fields is not None and fields[0] != "Z"


def _ours(state: VmState) -> bool:
    """Whether state.pid is still the virtme-ng process we started (pids get reused)."""
    return _names(state.pid, state.run_dir)


def _names(pid: int, directory: str | Path) -> bool:
    """Whether process pid has `directory` in its arguments (every process of a VM names
    its run directory)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return False
    return str(directory).encode() in b" ".join(cmdline)


def processes_mentioning(path: Path) -> list[str]:
    """Command lines of live processes whose arguments contain `path` (a leak check: every
    process of a VM names its run directory)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or not _alive(int(proc.name)):
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
        if str(path) in cmdline:
            found.append(cmdline)
    return found


def run_dir_of(cache: Path, name: str = DEFAULT_NAME) -> Path:
    return cache / name


def running(cache: Path, name: str = DEFAULT_NAME) -> VmState | None:
    state = VmState.load(run_dir_of(cache, name))
    return state if state and _alive(state.pid) and _ours(state) else None


def halt(cache: Path, name: str = DEFAULT_NAME) -> bool:
    """Stop the VM `name` (if any) and remove its directory; return whether it was running."""
    run_dir = run_dir_of(cache, name)
    with interrupts.held():  # a second Ctrl-C must not leave a VM or its keys behind
        state = VmState.load(run_dir)
        was_running = False
        if state and (_alive(state.pid) and _ours(state) or _orphans(state)):
            was_running = True
            _kill_group(state.pid)
        _stop_watcher(run_dir)
        console = run_dir / "console.log"
        if console.exists():
            console.replace(kept_path(cache, name, LAST_CONSOLE))
        shutil.rmtree(run_dir, ignore_errors=True)
    return was_running


def kept_path(cache: Path, name: str, what: str) -> Path:
    """Where a VM's post-mortem file `what` is kept in the cache after its halt."""
    return cache / (what if name == DEFAULT_NAME else f"{name}-{what}")


def _stop_watcher(run_dir: Path) -> None:
    """Stop the VM's panic watcher if it still runs (it ends by itself with QEMU)."""
    pid = vmcore.watcher_pid(run_dir)
    if pid is not None and _alive(pid) and _names(pid, run_dir):
        _kill_group(pid)


def _orphans(state: VmState) -> list[int]:
    """Processes of the VM's group whose leader already ended (virtme-run, QEMU). Its pid
    cannot have been reused while the group lives on, so they are ours."""
    return [] if _alive(state.pid) else _group_members(state.pid)


def _kill_group(pid: int) -> None:
    """TERM the VM's process group, KILL what outlives a grace period; return once no process
    of the group is left (not only its leader: virtme-run and QEMU may exit after it)."""
    for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            _reap(pid)
            if not _group_members(pid):
                return
            time.sleep(0.05)


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group pgid."""
    members = []
    for proc in Path("/proc").iterdir():
        fields = _stat(proc) if proc.name.isdigit() else None
        if fields and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(proc.name))
    return members


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def choose_accel(image: Path, cache: Path) -> str:
    usable, reason = accel.kvm_runs_kernel(image, cache)
    if not usable:
        print(f"vm: software emulation (TCG), as KVM cannot be used: {reason}", file=sys.stderr)
    return "kvm" if usable else "tcg"


def vng_argv(options: BootOptions, run_dir: Path, port: int, accel_name: str) -> list[str]:
    vng = Path(sys.executable).with_name("vng")
    netdev = (f"-netdev user,id=mlab,restrict=off,hostfwd=tcp:127.0.0.1:{port}-:22 "
              f"-device virtio-net-pci,netdev=mlab,mac={GUEST_MAC}")
    qemu_opts = " ".join((netdev, *vmcore.qemu_args(run_dir), *gdb.qemu_args(run_dir),
                          *options.qemu_opts))
    argv = [str(vng), "--run", str(options.image), "--verbose", "--force-9p",
            "--cpus", str(options.cpus), "--memory", options.memory,
            "--append", " ".join((*LOUD_CMDLINE, *KUNIT_CMDLINE, *options.append)),
            "--rwdir", str(run_dir / "guest"), "--cwd", str(PROJECT_ROOT),
            f"--qemu-opts={qemu_opts}",
            "--exec", shlex.join([str(GUEST_SCRIPT), str(run_dir), GUEST_MAC])]
    if accel_name == "tcg":
        argv.append("--disable-kvm")
    return argv


def boot(options: BootOptions, cache: Path, name: str = DEFAULT_NAME) -> Vm:
    """Boot VM `name` with options.image, or return it if it already runs that image."""
    image = options.image.resolve()
    if not image.is_file():
        raise BootFailed(f"no kernel image at {image} (run: invoke build)")
    current = running(cache, name)
    if current and current.image == str(image) \
            and current.image_mtime_ns == image.stat().st_mtime_ns:
        return Vm(current, cache, name)
    halt(cache, name)
    try:
        return _start(options, image, cache, name)
    except BaseException:
        halt(cache, name)
        raise


@contextlib.contextmanager
def session(options: BootOptions, cache: Path, name: str = DEFAULT_NAME):
    """VM `name` if it runs options.image, else one booted for this block and halted after
    it (also on failure and Ctrl-C), unless a command hung in it with keep_on_hang: the VM
    then stays up, with that command, for a person to look at."""
    before = running(cache, name)
    vm, kept = None, False
    try:
        vm = boot(options, cache, name)
        yield vm
    except CommandTimeout as err:
        kept = err.kept
        raise
    finally:
        if vm is not None and not kept and (before is None or before.pid != vm.state.pid):
            halt(cache, name)


def _start(options: BootOptions, image: Path, cache: Path, name: str) -> Vm:
    run_dir = run_dir_of(cache, name)
    (run_dir / "guest").mkdir(parents=True)
    run_dir.chmod(0o700)  # keys, and the gdb and QMP sockets: each gives the whole guest
    client_key = run_dir / "id_client"
    authorized = write_key_pair(client_key)
    (run_dir / "authorized_keys").write_text(authorized + "\n")
    host_public = write_key_pair(run_dir / "host_key")
    (run_dir / "sshd_config").write_text(sshd_config(run_dir))
    accel_name = options.accel or choose_accel(image, cache)
    if accel_name not in ("kvm", "tcg"):
        raise BootFailed(f"unknown accelerator {accel_name!r}: use kvm or tcg")
    port = free_local_port()
    argv = vng_argv(options, run_dir, port, accel_name)
    print(f"vm: {shlex.join(argv)}", file=sys.stderr)
    console = run_dir / "console.log"
    with console.open("wb") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   cwd=PROJECT_ROOT, env=vng_environment())
    state = VmState(process.pid, str(image), image.stat().st_mtime_ns, str(run_dir),
                    str(console), port, str(client_key), host_public, accel_name,
                    options.cpus, options.memory, argv)
    state.save()
    vmcore.start_watcher(run_dir)
    vm = Vm(state, cache, name)
    vm.wait_for_ssh(options.timeout, process)
    return vm


def vng_environment() -> dict[str, str]:
    """vng runs virtme-run by name: the virtualenv's bin directory must be on PATH."""
    venv_bin = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}


def sshd_config(run_dir: Path) -> str:
    """The guest sshd's configuration: only the keys made for this VM in run_dir."""
    return "\n".join([
        "Port 22",
        "PidFile /run/sshd.pid",
        f"HostKey {run_dir / 'host_key'}",
        f"AuthorizedKeysFile {run_dir / 'authorized_keys'}",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "UseDNS no",
        "PrintMotd no",
        "Subsystem sftp internal-sftp",
        "",
    ])


class Vm:
    def __init__(self, state: VmState, cache: Path, name: str = DEFAULT_NAME):
        self.state = state
        self.cache = cache
        self.name = name
        self.console = Path(state.console)
        self._guest: Guest | None = None
        self._sync_serial = 0
        self._release_and_version: tuple[str, str] | None = None
        self.slowdown = SANITIZED_SLOWDOWN if layout.is_sanitized(Path(state.image)) else 1.0

    # ---- the console ----
    def console_size(self) -> int:
        return self.console.stat().st_size if self.console.exists() else 0

    def console_since(self, offset: int) -> list[str]:
        with self.console.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace").splitlines()

    def last_console_lines(self, count: int = LAST_LINES) -> str:
        return "\n".join(self.console_since(0)[-count:])

    # ---- SSH ----
    def wait_for_ssh(self, timeout: float, process: subprocess.Popen | None = None) -> None:
        """Return once SSH works; fail with the last console lines if the VM exits, panics
        or stays silent past the timeout."""
        deadline = time.monotonic() + timeout
        attempt_timeout = ssh.CONNECT_TIMEOUT  # grows: a slow guest needs longer per attempt
        while True:
            # whether it ended, before reading the console: a VM that panicked, was dumped
            # and ended during one SSH attempt is reported by its panic, not as an exit
            exited = process is not None and process.poll() is not None \
                or not _alive(self.state.pid)
            panics = [s for s in oracle.find_splats(self.console_since(0)) if s.kind == "panic"]
            if panics:
                self._wait_for_end()
                # the report itself: while the dump is written the console goes on (the
                # panic's stack trace), and the last lines alone would miss its title
                raise BootFailed(f"the kernel panicked while booting: {panics[0].title}\n"
                                 f"{self._console_tail()}" + _dump_hint(self._keep_dump()))
            if exited:
                raise BootFailed(f"the VM exited while booting\n{self._console_tail()}")
            try:
                self._guest = Guest(self.state.ssh_port, Path(self.state.client_key),
                                    self.state.host_public_key, attempt_timeout)
                return
            except Exception as err:  # noqa: BLE001 - paramiko raises many kinds
                if time.monotonic() > deadline:
                    raise BootFailed(f"no SSH prompt from the VM within {timeout:.0f} s "
                                     f"({type(err).__name__})\n{self._console_tail()}") from None
                attempt_timeout = min(ssh.CONNECT_TIMEOUT_MAX, attempt_timeout * 1.25)
                time.sleep(0.1)

    def _console_tail(self) -> str:
        text = f"last console lines ({self.console}):\n{self.last_console_lines()}"
        sshd_log = Path(self.state.run_dir) / "guest" / "sshd.log"
        if sshd_log.exists() and sshd_log.stat().st_size:
            lines = sshd_log.read_text(errors="replace").splitlines()[-LAST_LINES:]
            text += "\nguest sshd log:\n" + "\n".join(lines)
        return text

    @property
    def guest(self) -> Guest:
        if self._guest is None or not self._guest.alive():
            self.wait_for_ssh(SYNC_TIMEOUT * self.slowdown)
        return self._guest

    # ---- what it runs, and files both ways ----
    @property
    def image(self) -> Path:
        return Path(self.state.image)

    @property
    def accel(self) -> str:
        return self.state.accel

    @property
    def exchange_dir(self) -> Path:
        """A directory the guest writes and the host reads, at the same path on both sides."""
        return Path(self.state.run_dir) / "guest"

    def describe(self) -> str:
        state = self.state
        return (f"({state.accel}, {state.cpus} CPUs, {state.memory}) kernel {state.image}; "
                f"ssh on 127.0.0.1:{state.ssh_port}; console {state.console}")

    def build_record(self) -> BuildRecord | None:
        path = self.build_record_path()
        return BuildRecord.load(path.parent) if path else None

    def copy_in(self, source: Path, name: str | None = None) -> Path:
        """Copy a host file into the exchange directory; return its path (the same in the
        guest)."""
        target = self.exchange_dir / (name or source.name)
        shutil.copy2(source, target)
        return target

    def copy_out(self, guest_path: str, target: Path) -> Path:
        """Copy a file of the guest to the host (any path of the guest, over SSH)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        self.guest.get(guest_path, target)
        return target

    def build_record_path(self) -> Path | None:
        """The build record of the booted kernel: None for an image from outside our builds,
        or one rebuilt since this VM booted it (its record no longer describes it)."""
        image = Path(self.state.image)
        if BuildRecord.of_image(image) is None \
                or image.stat().st_mtime_ns != self.state.image_mtime_ns:
            return None
        return record_path_of(image)

    def check_runs_its_image(self) -> None:
        """Fail unless the guest runs the very build of self.image (its link time): a
        verdict about a kernel must not come from another one."""
        expected = uts_version(self.image)
        actual = self._uname()[1]
        if expected is not None and actual != expected:
            raise VmError(f"the VM runs kernel {actual!r}, not the build of {self.image} "
                          f"({expected!r}): halt it and boot again")

    def kernel_release(self) -> str:
        return self._uname()[0]

    def _uname(self) -> tuple[str, str]:
        """The running kernel's release and version (`uname -r`, `uname -v`), asked once."""
        if self._release_and_version is None:
            answer = self.guest.run(["uname", "-r", "-v"], SYNC_TIMEOUT).output.strip()
            release, _, version = answer.partition(" ")
            self._release_and_version = (release, version)
        return self._release_and_version

    # ---- commands under the oracle ----
    def run(self, argv: Sequence[str], timeout: float, output: Output | None = None,
            cwd: str | Path | None = None, env: dict[str, str] | None = None,
            keep_on_hang: bool = False) -> CommandReport:
        """Run argv in the guest (in cwd, with env added), then its settle step (see
        guest-settle): the splats logged from its start until the deferred work it left is
        done count against it. A shell command is ["sh", "-c", text]. A command that
        outlives `timeout` raises CommandTimeout; with keep_on_hang it is left running
        and the VM stays up (session() does not halt it)."""
        command = guest_command(argv, cwd, env)
        start = self.console_size()
        marker = self._next_marker()
        after = settle.After(self.exchange_dir, f"mptcp-lab-{marker.rsplit(' ', 1)[-1]}")
        try:
            result = self.guest.run(
                after.around(command, marker), timeout, output,
                before_kill=lambda: self._blocked_tasks_dump(start),
                keep_on_timeout=keep_on_hang, label=command,
                more_time=lambda: settle.TIMEOUT if after.command_ended.exists() else 0.0)
        except ConnectionLost as err:
            after.discard()
            raise self._death(str(err), start) from None
        except CommandTimeout as err:
            ended = after.command_ended.exists()  # then it was the settle step that hung
            after.discard()
            if not ended:
                raise
            raise CommandTimeout(f"the settle step after: {command}", err.timeout, err.output,
                                 err.kept) from None
        except KeyboardInterrupt:
            after.discard()
            raise
        self._wait_for_marker(marker, start)
        splats = oracle.find_splats(self.console_since(start))
        settle_status, settle_output = after.result()
        return CommandReport(list(map(str, argv)), result.status, result.output, "",
                             splats + settle.splats(settle_status, settle_output),
                             settle_output.strip())

    def run_module(self, module: str, args: Sequence[str], timeout: float,
                   output: Output | None = None, cwd: str | Path | None = None,
                   env: dict[str, str] | None = None, keep_on_hang: bool = False
                   ) -> CommandReport:
        """`python -m module args` in the guest, forked from its warm Python (see warm.py):
        the project's imports are paid once per boot, not once per command."""
        self._ensure_warm()
        argv = warm.client_argv(sys.executable, module, [str(a) for a in args],
                                client=self._warm_client())
        return self.run(argv, timeout, output, cwd=cwd or PROJECT_ROOT, env=env,
                        keep_on_hang=keep_on_hang)

    def _warm_client(self) -> Path:
        """The compiled client, in the exchange directory (the guest runs it from there)."""
        compiled = warm.compiled_client(self.cache / "tools")
        client = self.exchange_dir / compiled.name
        if not client.exists():
            shutil.copy2(compiled, client)
        return client

    def _ensure_warm(self) -> None:
        """Start the guest's warm Python unless its manifest says it serves, with modules
        as they are now on disk (checked here, without a round trip to the guest)."""
        manifest_path = self.exchange_dir / warm.MANIFEST
        manifest = warm.Manifest.load(manifest_path)
        if manifest is not None:
            changed = manifest.changed_files()
            if not changed:
                return
            print(f"vm: restarting the guest's warm Python: {changed[0]} changed",
                  file=sys.stderr)
            manifest_path.unlink()
            self.guest.run(["kill", str(manifest.pid)], SYNC_TIMEOUT)
        log = self.exchange_dir / "warm.log"
        start = shlex.join(warm.server_argv(sys.executable, manifest_path))
        self.guest.run(["sh", "-c", f"cd {shlex.quote(str(PROJECT_ROOT))} && setsid {start} "
                        f"> {shlex.quote(str(log))} 2>&1 < /dev/null &"], SYNC_TIMEOUT)
        timeout = WARM_TIMEOUT * self.slowdown
        deadline = time.monotonic() + timeout
        while warm.Manifest.load(manifest_path) is None:
            if time.monotonic() > deadline:
                raise VmError(f"the guest's warm Python did not start within "
                              f"{timeout:.0f} s; its log ({log}):\n"
                              f"{log.read_text(errors='replace') if log.exists() else ''}")
            time.sleep(0.2)

    def named_namespaces(self) -> list[str]:
        listing = self.guest.run(["ls", "-1", "/run/netns"], SYNC_TIMEOUT)
        return listing.output.split() if listing.status == 0 else []

    def decoded(self, splat: oracle.Splat) -> str:
        """The splat's text, its trace decoded against this VM's kernel build."""
        return decode.decode(splat.text, Path(self.state.image))

    def sync_console(self) -> None:
        """Write a marker to /dev/kmsg and wait for it on the console: everything the kernel
        logged before it is then in the console file."""
        marker, start = self._next_marker(), self.console_size()
        self.guest.run(["sh", "-c", 'echo "$1" > /dev/kmsg', "sync", marker], SYNC_TIMEOUT)
        self._wait_for_marker(marker, start)

    def _next_marker(self) -> str:
        self._sync_serial += 1
        return f"{oracle.MARKER_PREFIX} sync {os.getpid()}-{self._sync_serial}"

    def _wait_for_marker(self, marker: str, start: int) -> None:
        """Wait until the console, from offset `start`, shows the line `marker` that the
        guest wrote to /dev/kmsg."""
        deadline = time.monotonic() + SYNC_TIMEOUT
        while not any(line.endswith(marker) for line in self.console_since(start)):
            if time.monotonic() > deadline:
                raise VmError(f"the console did not show the sync marker within "
                              f"{SYNC_TIMEOUT:.0f} s ({self.console})")
            time.sleep(0.02)

    def _blocked_tasks_dump(self, start: int) -> str:
        """Ask the guest for SysRq-w and return what the console shows of it."""
        try:
            self.guest.run(["sh", "-c", "echo w > /proc/sysrq-trigger"], SYNC_TIMEOUT)
            self.sync_console()
        except (SshError, VmError) as err:
            return f"\n(no blocked-task dump: {err})"
        lines = self.console_since(start)
        first = next((i for i, line in enumerate(lines) if "sysrq: Show Blocked State" in line),
                     None)
        dump = lines[first:] if first is not None else lines[-LAST_LINES:]
        dump = [line for line in dump if oracle.MARKER_PREFIX not in line]
        return "\n--- blocked tasks (SysRq-w) ---\n" + "\n".join(dump)

    def _death(self, reason: str, start: int) -> GuestDied:
        """The guest went away under a command: wait for QEMU to end, report the splats."""
        self._wait_for_end()
        splats = oracle.find_splats(self.console_since(start))
        shown = "\n\n".join(s.text for s in splats) or self.last_console_lines()
        dump = self._keep_dump()
        halt(self.cache, self.name)
        return GuestDied(f"{reason}: the VM died\n{shown}{_dump_hint(dump)}", splats, dump)

    def _wait_for_end(self) -> None:
        """After a panic: give QEMU END_WAIT to end, and the watcher up to DUMP_WAIT while
        it writes the guest's memory (halting the VM before would lose the dump)."""
        start, run_dir = time.monotonic(), Path(self.state.run_dir)
        while _alive(self.state.pid):
            waited = time.monotonic() - start
            if waited > (DUMP_WAIT if vmcore.dump_in_progress(run_dir) else END_WAIT):
                return
            time.sleep(0.1)

    def _keep_dump(self) -> Path | None:
        """The dump of the guest's memory taken at its panic, moved out of the VM's directory
        (which halt removes); None if its kernel cannot report a panic (no CONFIG_PVPANIC)."""
        record = self.build_record()
        return vmcore.keep(Path(self.state.run_dir), kept_path(self.cache, self.name, LAST_VMCORE),
                           self.state.image, record.vmlinux if record else "")


def _dump_hint(dump: Path | None) -> str:
    return f"\nits memory at the panic: {dump} (invoke inspect --core {dump})" if dump else ""


def guest_command(argv: Sequence[str], cwd: str | Path | None = None,
                  env: dict[str, str] | None = None) -> str:
    """The guest shell's command line for argv, run in cwd with env added (quoted here, in
    one place: callers give argv lists)."""
    if isinstance(argv, str) or not argv:
        raise TypeError("Vm.run() takes a non-empty argv list; a shell command is "
                        "['sh', '-c', text]")
    words = [str(a) for a in argv]
    if env:
        words = ["env", *(f"{k}={v}" for k, v in env.items()), *words]
    command = shlex.join(words)
    return f"cd {shlex.quote(str(cwd))} && exec {command}" if cwd else command
