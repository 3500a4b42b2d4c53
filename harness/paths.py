"""Where the project keeps its files: the source tree and the cache directory."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TOPOLOGY_DIR = PROJECT_ROOT / "topologies"
TESTS_DIR = PROJECT_ROOT / "tests"
REPORTS_DIR = PROJECT_ROOT / "reports"  # what runs leave for a user to read


CHECKOUT_PARTS = ("topologies", "kernel_patches", "tests")


def not_a_checkout() -> str | None:
    """Why PROJECT_ROOT is not a clone of the repository (None: it is).

    The harness reads topologies, the patch series and its tests from the checkout, and the
    VM shares it with the guest at the same path. A non-editable `pip install .` copies only
    the Python package into site-packages, where none of these are."""
    missing = [part for part in CHECKOUT_PARTS if not (PROJECT_ROOT / part).is_dir()]
    if not missing:
        return None
    return (f"mptcp-lab runs from a clone of its repository, installed editable "
            f"(`pip install -e .`, which ./bootstrap does): {PROJECT_ROOT} has no "
            f"{', '.join(p + '/' for p in missing)} (a non-editable `pip install .` copies "
            f"only the Python package)")


def cache_dir(configured: str | None = None) -> Path:
    """The cache directory: the configured one (invoke.yaml / INVOKE_CACHE_DIR) or XDG's."""
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "mptcp-lab"
