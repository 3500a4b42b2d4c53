"""Where the project keeps its files: the source tree and the cache directory."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TOPOLOGY_DIR = PROJECT_ROOT / "topologies"
TESTS_DIR = PROJECT_ROOT / "tests"


def cache_dir(configured: str | None = None) -> Path:
    """The cache directory: the configured one (invoke.yaml / INVOKE_CACHE_DIR) or XDG's."""
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "mptcp-lab"
