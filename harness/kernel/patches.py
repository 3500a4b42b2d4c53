"""Apply a quilt-style series to a hard-linked working copy, incrementally and atomically.

The working copy starts as hard links to the base tree. To apply a series, the files it
touches (and those the previous series touched) are copied from the base into a scratch
directory and patched there; only if every patch applies are files of the working copy
replaced, and only those whose content changed. Unchanged files keep their mtime, so make
rebuilds just what a changed patch affects; a failing patch leaves the copy as it was.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.kernel.errors import KernelError
from harness.run import run

STATE_FILE = ".mlab-applied.json"
SERIES_FILE = ".mlab-series.json"  # [name, sha256] of the series the working copy holds
DIFF_PATH = re.compile(r"^(?:---|\+\+\+) (?:[ab]/)?(\S+)")


@dataclass(frozen=True)
class Patch:
    path: Path  # a file `patch -i` reads (a piece written from an mbox, for mbox input)
    sha256: str  # of the patch text: an unchanged patch keeps a build cached
    files: tuple[str, ...]
    origin: str = ""  # where the text came from when not from `path` itself (mbox message)

    @property
    def name(self) -> str:
        return self.path.name

    def __str__(self) -> str:
        return f"{self.path} ({self.origin})" if self.origin else str(self.path)


class PatchFailed(KernelError):
    pass


def files_of(text: str) -> tuple[str, ...]:
    """Files a unified diff touches (paths relative to the tree)."""
    found = []
    for line in text.splitlines():
        match = DIFF_PATH.match(line)
        if match and match[1] != "/dev/null" and match[1] not in found:
            found.append(match[1])
    return tuple(found)


def load_patch(path: Path, origin: str = "") -> Patch:
    """One patch file: its hash and the files it touches; an error if it has no diff."""
    text = path.read_text(errors="replace")
    files = files_of(text)
    if not files:
        raise KernelError(f"{origin or path}: not a patch (no ---/+++ file lines)")
    return Patch(path, hashlib.sha256(text.encode()).hexdigest(), files, origin)


def series_entry(line: str) -> str:
    """The patch file a line of a series file names; "" for a comment or a blank line."""
    return line.split("#", 1)[0].strip()


def read_series(directory: Path) -> list[Patch]:
    """The patches listed in directory/series, in order (comments and blank lines skipped).

    Callers use patch_input.read_patches, which also takes format-patch output and mboxes."""
    series = directory / "series"
    if not series.exists():
        raise KernelError(f"{series}: no series file in the patch directory")
    patches = []
    for number, line in enumerate(series.read_text().splitlines(), start=1):
        name = series_entry(line)
        if not name:
            continue
        path = directory / name
        if not path.exists():
            raise KernelError(f"{series}:{number}: patch {name} does not exist")
        patches.append(load_patch(path))
    return patches


def ensure_working_copy(base: Path, work: Path) -> None:
    """Make `work` a tree of hard links to `base` (once)."""
    if (work / "Makefile").exists():
        return
    work.parent.mkdir(parents=True, exist_ok=True)
    staging = work.with_name(work.name + ".staging")
    if staging.exists():
        shutil.rmtree(staging)
    # resolved: given a symlink, cp would copy the link, and the "working copy" would be
    # the base itself, which every patch would then modify
    run(["cp", "-al", str(base.resolve()), str(staging)], timeout=600)
    if staging.is_symlink():
        raise KernelError(f"{work}: the working copy would be a link to {base}")
    os.replace(staging, work)


def _failure(patch: Patch, output: str) -> PatchFailed:
    current, failures = None, []
    for line in output.splitlines():
        if line.startswith("patching file "):
            current = line.removeprefix("patching file ").strip()
        elif "FAILED" in line and line.startswith("Hunk"):
            failures.append(f"{current}: {line.strip().rstrip('.')}")
        elif line.startswith("can't find file to patch"):
            failures.append(line.strip())
    detail = "; ".join(failures) or output.strip().splitlines()[-1]
    return PatchFailed(f"patch {patch} does not apply: {detail}. Nothing was changed: "
                       f"the working tree is as before this series")


def _patched_in_scratch(base: Path, scratch: Path, patches: list[Patch],
                        touched: set[str]) -> None:
    for name in touched:
        if (base / name).is_file():
            (scratch / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(base / name, scratch / name)
    for patch in patches:
        result = run(["patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch",
                      "-r", "-", "-d", str(scratch), "-i", str(patch.path)], check=False)
        if result.returncode != 0:
            raise _failure(patch, result.stdout + result.stderr)


def _replace(source: Path, target: Path) -> None:
    """Write source's content to target as a new file: a new inode (the base stays untouched)
    and a new mtime (make must see it as newer than objects built from the old content)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.mlab-new")
    shutil.copyfile(source, tmp)
    shutil.copymode(source, tmp)
    os.replace(tmp, target)


def apply_series(base: Path, work: Path, patches: list[Patch]) -> list[str]:
    """Bring `work` to base + patches; return the files whose content changed."""
    state = work / STATE_FILE
    previous = set(json.loads(state.read_text())) if state.exists() else set()
    wanted = {name for patch in patches for name in patch.files}
    changed = []
    with tempfile.TemporaryDirectory(prefix="mlab-patch-") as tmp:
        scratch = Path(tmp)
        _patched_in_scratch(base, scratch, patches, wanted | previous)
        for name in sorted(wanted | previous):
            desired, current = scratch / name, work / name
            if not desired.exists():
                if current.exists():
                    current.unlink()
                    changed.append(name)
                continue
            if current.exists() and filecmp.cmp(desired, current, shallow=False):
                continue
            _replace(desired, current)  # scratch holds the base version of restored files
            changed.append(name)
    state.write_text(json.dumps(sorted(wanted)))
    (work / SERIES_FILE).write_text(json.dumps([[p.name, p.sha256] for p in patches]))
    return changed


def applied_series(work: Path) -> list[list[str]] | None:
    """[name, sha256] of the series `work` holds; None for a tree no series went into."""
    path = work / SERIES_FILE
    return json.loads(path.read_text()) if path.exists() else None
