"""Topologies left up for manual work (`invoke topo.up` / `topo.down`), recorded in a file."""

from __future__ import annotations

import json
from pathlib import Path

from harness.topology.builder import bring_up_detached, teardown_namespaces
from harness.topology.live import Topo
from harness.topology.loader import load_named


def _read(state_file: Path) -> list[dict]:
    return json.loads(state_file.read_text()) if state_file.exists() else []


def bring_up(name: str, state_file: Path) -> Topo:
    """Bring up topology `name` and append what is needed to remove it to state_file."""
    topo = bring_up_detached(load_named(name))
    states = _read(state_file) + [topo.state()]
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(states, indent=2))
    return topo


def bring_down(state_file: Path) -> list[str]:
    """Remove every namespace recorded in state_file (and nothing else); clear the file."""
    deleted = []
    for state in _read(state_file):
        deleted += teardown_namespaces(state["namespaces"])
    state_file.unlink(missing_ok=True)
    return deleted
