"""Collection rules for the whole test tree.

tests/vm boots VMs of its own and takes minutes: a bare `pytest` (or `pytest tests`) leaves
it out; it runs only when named, as `invoke oracle` does (`pytest tests/vm`, or one file of
it).
"""

from __future__ import annotations

from pathlib import Path

VM_TESTS = Path(__file__).parent / "vm"


def named_explicitly(path: Path, args: list[str]) -> bool:
    """Whether a command-line argument is `path` or lies inside it."""
    for arg in args:
        given = Path(arg.split("::", 1)[0]).resolve()
        if given == path or path in given.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config):
    if collection_path == VM_TESTS and not named_explicitly(VM_TESTS, config.args):
        return True
    return None
