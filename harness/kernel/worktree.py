"""A user's git tree at a given revision, without ever writing to the user's tree.

`git clone --shared --no-checkout` makes a clone under the cache whose objects come from
the user's repository (no copy, and nothing written there: no worktree entry, no ref), and
a detached checkout brings it to a revision. The clone's path is fixed per user tree, so
its build directory is too: going from one revision to the next rebuilds only what
changed (and ccache serves what was built before, in any clone).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from harness.kernel.errors import KernelError
from harness.run import CommandError, run

GIT_TIMEOUT = 600.0


def git_dir_of(tree: Path) -> None:
    """Raise unless `tree` is a git work tree."""
    if not tree.is_dir():
        raise KernelError(f"--tree {tree}: no such directory")
    found = run(["git", "-C", str(tree), "rev-parse", "--is-inside-work-tree"], check=False)
    if found.returncode != 0 or found.stdout.strip() != "true":
        raise KernelError(f"--tree {tree}: not a git tree (bisecting and building a revision "
                          f"need one)")


def resolve(tree: Path, revision: str) -> str:
    """The full commit id of `revision` in `tree`, or a clear error."""
    found = run(["git", "-C", str(tree), "rev-parse", "--verify", "--quiet",
                 f"{revision}^{{commit}}"], check=False)
    if found.returncode != 0:
        raise KernelError(f"revision {revision!r} does not exist in {tree}")
    return found.stdout.strip()


def subject(tree: Path, commit: str) -> str:
    return run(["git", "-C", str(tree), "log", "-1", "--format=%s", commit]).stdout.strip()


def clone_path(tree: Path, cache: Path) -> Path:
    key = hashlib.sha256(str(tree.resolve()).encode()).hexdigest()[:12]
    return cache / "trees" / key


def checkout(tree: str | Path, revision: str, cache: Path) -> Path:
    """The cache's clone of `tree`, checked out (detached) at `revision`."""
    tree = Path(tree).expanduser().resolve()
    git_dir_of(tree)
    commit = resolve(tree, revision)
    clone = clone_path(tree, cache)
    if not (clone / ".git").exists():
        _clone(tree, clone)
    try:
        run(["git", "-C", str(clone), "checkout", "--quiet", "--force", "--detach", commit],
            timeout=GIT_TIMEOUT)
        run(["git", "-C", str(clone), "clean", "-fdxq"], timeout=GIT_TIMEOUT)
    except CommandError as err:
        raise KernelError(f"cannot check out {revision} of {tree} in {clone}: "
                          f"{err.stderr.strip()}") from None
    return clone


def _clone(tree: Path, clone: Path) -> None:
    staging = clone.with_name(clone.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    run(["git", "clone", "--quiet", "--shared", "--no-checkout", str(tree), str(staging)],
        timeout=GIT_TIMEOUT)
    staging.rename(clone)
