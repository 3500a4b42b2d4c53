"""The guest's memory, dumped when its kernel panics: a vmcore for drgn (invoke inspect --core).

QEMU is given a pvpanic device and told to pause on a guest panic, and a vmcoreinfo device
(the dump then carries VMCOREINFO, which drgn needs). A kernel with CONFIG_PVPANIC (our
debug variant) reports its panic to the device from its panic notifiers, after the oops is
in its log buffer. A watcher started with the VM waits on the VM's QMP socket for that
event, dumps the paused guest's memory into the VM's directory as an ELF core (what drgn
reads; QEMU 7.2's compressed kdump format came out flattened, and libkdumpfile could not
tell its architecture), makes its zero blocks holes (2 GiB of RAM: 478 MB on disk, 9.1 s
in all, on the debug kernel), and lets the guest go on: the panic then reaches
the console and the VM ends as it always did. A kernel without the driver panics and ends
as before, with no dump.

`Vm` moves the dump out of the VM's directory before removing it (`keep`): to the cache as
`vm-last-vmcore`, with `.json` beside it saying which kernel it is of; a reproduction moves
it into the run's evidence.

`python -m harness.vm.vmcore RUN_DIR` is the watcher.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.paths import PROJECT_ROOT
from harness.vm.qmp import Qmp, QmpError

QMP_SOCKET = "qmp.sock"
WATCHER_PID = "vmcore-watch.pid"
WATCHER_LOG = "vmcore-watch.log"
DUMP = "vmcore"
PARTIAL = "vmcore.partial"
FORMAT = "elf"
QMP_WAIT = 30.0  # QEMU makes its socket right after it starts


@dataclass(frozen=True)
class DumpRecord:
    """What is known of a dump, written beside it as `<dump>.json`."""
    format: str
    bytes: int  # on disk
    seconds: float  # how long writing it took (QEMU's dump, then the holes made)
    panicked_at: float  # host wall-clock time of the guest's panic event
    image: str = ""  # the kernel it is of, filled in by keep()
    vmlinux: str = ""

    @staticmethod
    def path_for(dump: Path) -> Path:
        return dump.with_name(dump.name + ".json")

    def save(self, dump: Path) -> None:
        self.path_for(dump).write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, dump: Path) -> DumpRecord | None:
        path = cls.path_for(dump)
        return cls(**json.loads(path.read_text())) if path.exists() else None


def qemu_args(run_dir: Path) -> list[str]:
    """QEMU's arguments for a VM whose panic is dumped (the QMP socket is private to the
    VM's directory)."""
    return ["-qmp", f"unix:{run_dir / QMP_SOCKET},server=on,wait=off",
            "-device", "pvpanic", "-device", "vmcoreinfo", "-action", "panic=pause"]


def start_watcher(run_dir: Path) -> int:
    """Start the watcher of the VM in run_dir, in its own session; return its pid. It ends
    by itself when QEMU does (and halt() stops it)."""
    with (run_dir / WATCHER_LOG).open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "harness.vm.vmcore", str(run_dir)],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=PROJECT_ROOT)
    (run_dir / WATCHER_PID).write_text(str(process.pid))
    return process.pid


def watcher_pid(run_dir: Path) -> int | None:
    path = run_dir / WATCHER_PID
    return int(path.read_text()) if path.exists() else None


def watch(run_dir: Path) -> int:
    """Wait for the guest's panic, dump its memory, let it go on; return at QEMU's end."""
    try:
        qmp = Qmp(run_dir / QMP_SOCKET, QMP_WAIT)
    except (QmpError, OSError) as err:
        print(f"vmcore: {err}", flush=True)
        return 1
    event = qmp.wait_event({"GUEST_PANICKED"})
    if event is None:
        return 0  # QEMU ended without a panic
    print(f"vmcore: the guest panicked ({event.get('data')}), dumping", flush=True)
    try:
        record = dump(qmp, run_dir)
        print(f"vmcore: {record.bytes} bytes in {record.seconds:.1f} s", flush=True)
    except (QmpError, OSError) as err:
        print(f"vmcore: no dump: {err}", flush=True)
    try:
        qmp.execute("cont")  # the panic goes on: the console gets the rest, the VM ends
    except (QmpError, OSError) as err:
        print(f"vmcore: could not resume the guest ({err}); quitting QEMU", flush=True)
        qmp.execute("quit")
    qmp.wait_event(set())
    return 0


def dump_in_progress(run_dir: Path) -> bool:
    """Whether the watcher is writing a dump (its record comes last)."""
    final = run_dir / DUMP
    return (run_dir / PARTIAL).exists() or \
        (final.exists() and not DumpRecord.path_for(final).exists())


def dump(qmp: Qmp, run_dir: Path) -> DumpRecord:
    panicked_at, start = time.time(), time.monotonic()
    partial, final = run_dir / PARTIAL, run_dir / DUMP
    qmp.execute("dump-guest-memory", paging=False, protocol=f"file:{partial}", format=FORMAT)
    subprocess.run(["fallocate", "--dig-holes", str(partial)], check=False)  # util-linux
    partial.replace(final)
    record = DumpRecord(FORMAT, final.stat().st_blocks * 512, time.monotonic() - start, panicked_at)
    record.save(final)
    return record


def keep(run_dir: Path, target: Path, image: str, vmlinux: str) -> Path | None:
    """Move the VM's dump (if its kernel panicked and was dumped) to `target`, noting the
    kernel it is of; return target, or None when there is no dump."""
    source = run_dir / DUMP
    record = DumpRecord.load(source)
    if record is None or not source.exists():
        return None
    DumpRecord(**{**asdict(record), "image": image, "vmlinux": vmlinux}).save(source)
    return move(source, target)


def move(dump_path: Path, target: Path) -> Path:
    """Move a kept dump and its record (e.g. into a run's evidence)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(dump_path), target)
    record = DumpRecord.path_for(dump_path)
    if record.exists():
        shutil.move(str(record), DumpRecord.path_for(target))
    return target


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m harness.vm.vmcore RUN_DIR", file=sys.stderr)
        return 2
    return watch(Path(argv[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
