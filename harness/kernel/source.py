"""Where the kernel source comes from: Debian's linux-source-6.12 or a user's tree.

The Debian tarball is unpacked once into the cache as a pristine base that is never
modified. Patches go into a working copy made of hard links to a base (see patches.py);
a user's tree is only read: builds go to an out-of-tree O= directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.kernel.errors import KernelError
from harness.run import run

DEBIAN_PACKAGE = "linux-source-6.12"
DEBIAN_TARBALL = Path("/usr/src/linux-source-6.12.tar.xz")
UNPACK_TIMEOUT = 900.0


@dataclass(frozen=True)
class Source:
    kind: str  # "debian" or "tree"
    id: str  # what identifies its content: package version, or commit + uncommitted diff
    base: Path  # the unpatched tree (read only)
    key: str  # a stable name for its cache and build directories


def debian(cache: Path, tarball: Path = DEBIAN_TARBALL) -> Source:
    """Debian's kernel source, unpacked under the cache once (atomically)."""
    if not tarball.exists():
        raise KernelError(f"no kernel source: {tarball} is missing; install the Debian package "
                          f"{DEBIAN_PACKAGE} (invoke setup) or build your own tree with --tree")
    version = run(["dpkg-query", "-W", "-f", "${Version}", DEBIAN_PACKAGE]).stdout.strip()
    key = f"{DEBIAN_PACKAGE}-{version}".replace("~", "_")
    pristine = cache / "src" / key / "pristine"
    if not (pristine / "Makefile").exists():
        _unpack(tarball, pristine)
    return Source("debian", f"{DEBIAN_PACKAGE} {version}", pristine, key)


def _unpack(tarball: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".unpack-") as tmp:
        run(["tar", "-xf", str(tarball), "-C", tmp], timeout=UNPACK_TIMEOUT)
        (top,) = Path(tmp).iterdir()
        if destination.exists():
            shutil.rmtree(destination)
        os.replace(top, destination)


def user_tree(path: str | Path) -> Source:
    """A user's kernel tree (a git checkout, possibly with uncommitted changes)."""
    tree = Path(path).expanduser().resolve()
    if not (tree / "Makefile").exists() or not (tree / "net" / "mptcp").is_dir():
        raise KernelError(f"--tree {tree}: not a kernel source tree with net/mptcp "
                          f"(no Makefile or net/mptcp/ there)")
    if (tree / ".config").exists() or (tree / "include" / "config").exists():
        raise KernelError(f"--tree {tree}: the tree has been built in place (.config or "
                          f"include/config exists); out-of-tree builds need 'make mrproper' "
                          f"there first")
    key = "tree-" + hashlib.sha256(str(tree).encode()).hexdigest()[:12]
    return Source("tree", _tree_id(tree), tree, key)


def _tree_id(tree: Path) -> str:
    head = run(["git", "-C", str(tree), "rev-parse", "HEAD"], check=False)
    if head.returncode != 0:
        return "unversioned " + hashlib.sha256(str(tree.stat().st_mtime).encode()).hexdigest()
    diff = run(["git", "-C", str(tree), "diff", "HEAD"], timeout=120).stdout
    dirty = hashlib.sha256(diff.encode()).hexdigest()[:12] if diff else "clean"
    return f"{head.stdout.strip()} {dirty}"
