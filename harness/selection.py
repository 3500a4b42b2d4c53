"""Which test files hold the tests that `-k KEYWORD` selects, found on the host.

A pytest in the VM given only these files imports only them: under emulation every test
module costs a second or more. pytest finds them here (`--collect-only`, about 0.8 s); the
answer is kept in the cache, keyed by the keyword, the paths and the state (path, size,
modification time) of every file a collection reads: the project's Python and TOML files
under tests/ and harness/, pyproject.toml, and the installed packages' directory. An edit to
any of them, or a package installed, makes pytest collect again: the edit-test loop, which
changes the kernel and not the tests, collects once.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import sysconfig
from pathlib import Path

from harness.paths import PROJECT_ROOT

CACHE_SUBDIR = "test-selection"
COLLECTED_TREES = ("tests", "harness")
COLLECTED_SUFFIXES = (".py", ".toml")


def files_selected(paths: list[Path], keyword: str, cache: Path | None = None) -> list[Path]:
    """The test files under `paths` holding a test that `-k keyword` selects. When the
    collection fails or selects nothing, `paths` as given (the VM's pytest then reports it).
    With `cache` (a directory), an answer for the same inputs is reused."""
    entry = cache / CACHE_SUBDIR / f"{fingerprint(paths, keyword)}.json" if cache else None
    if entry is not None and entry.exists():
        try:
            return [Path(name) for name in json.loads(entry.read_text())]
        except (OSError, ValueError):
            pass  # a broken entry: collect again
    files = _collect(paths, keyword)
    if entry is not None and files is not None:
        entry.parent.mkdir(parents=True, exist_ok=True)
        entry.write_text(json.dumps([str(f) for f in files]))
    return files if files is not None else list(paths)


def _collect(paths: list[Path], keyword: str) -> list[Path] | None:
    """pytest --collect-only here; None when it fails or selects nothing."""
    argv = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
            *(str(p.resolve()) for p in paths), "-k", keyword]
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          cwd=PROJECT_ROOT)  # the rootdir: pytest names files from there
    files = dict.fromkeys(PROJECT_ROOT / line.split("::", 1)[0]
                          for line in done.stdout.splitlines() if "::" in line)
    return list(files) if done.returncode == 0 and files else None


def fingerprint(paths: list[Path], keyword: str, root: Path = PROJECT_ROOT) -> str:
    """What a collection's answer depends on, as a short hash (see the module's doc)."""
    digest = hashlib.sha256(json.dumps([keyword, sys.executable,
                                        *(str(p.resolve()) for p in paths)]).encode())
    inputs = [root / "pyproject.toml", Path(sysconfig.get_paths()["purelib"])]
    inputs += sorted(f for tree in COLLECTED_TREES for f in (root / tree).rglob("*")
                     if f.suffix in COLLECTED_SUFFIXES)
    for path in inputs:
        try:
            stat = path.stat()
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0gone\n".encode())
    return digest.hexdigest()[:32]
