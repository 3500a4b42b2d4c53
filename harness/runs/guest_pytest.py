"""pytest as the VM runs it: `python -m harness.runs.guest_pytest ARGS` is `pytest ARGS` with
our plugin (harness.pytest_plugin) registered as the module it is.

`pytest -p harness.pytest_plugin` would register the same plugin, but only after looking
for an entry point of that name in every installed distribution's metadata: in the VM, over
9p under emulation, that look reads about a hundred files a run. The entry points are not
loaded in the VM at all (PYTEST_DISABLE_PLUGIN_AUTOLOAD): ours is named, here.
"""

from __future__ import annotations

import sys

import pytest

from harness import pytest_plugin

if __name__ == "__main__":
    sys.exit(pytest.main(sys.argv[1:], plugins=[pytest_plugin]))
