"""A bundle from a syzkaller C reproducer (`invoke repro DIR --from-syzbot repro.c`).

The reproducer is copied into the new bundle as it is and run as a C step (compiled on the
host, static); it usually loops until killed, so the step is cut at its timeout and only a
kernel splat counts as reproduced. Given the report's kernel config, the MPTCP items it sets
(and the items the reproducer names) become the bundle's extra config, modules as built-in.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from harness.kernel import kconfig
from harness.repro.bundle import BUNDLE_FILE, BundleError

STEP_TIMEOUT = 60
RELEVANT = re.compile(r"^CONFIG_(MPTCP\w*|INET_MPTCP_DIAG)$")


def relevant_config(config_text: str, reproducer_text: str, origin: str) -> list[str]:
    """The report's items that matter here: MPTCP's, and those the reproducer names."""
    items = []
    for name, value in kconfig.parse(_only_items(config_text), origin).items():
        if value == "n" or not (RELEVANT.match(name) or name in reproducer_text):
            continue
        items.append(f"{name}={'y' if value == 'm' else value}")
    return items


def _only_items(text: str) -> str:
    """A .config without its comment lines that are not '# CONFIG_X is not set'."""
    return "\n".join(line for line in text.splitlines()
                     if line.startswith("CONFIG_") or line.endswith(" is not set"))


def write_bundle(target: Path, reproducer: Path, config: Path | None = None) -> Path:
    if not reproducer.is_file():
        raise BundleError(f"--from-syzbot {reproducer}: no such file")
    if (target / BUNDLE_FILE).exists():
        raise BundleError(f"{target / BUNDLE_FILE}: already exists; choose a new directory")
    text = reproducer.read_text(errors="replace")
    items = relevant_config(config.read_text(), text, str(config)) if config else []
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(reproducer, target / "repro.c")
    lines = [
        f"summary = {json.dumps(f'syzkaller reproducer {reproducer.name}')}",
        f"origin = {json.dumps(str(reproducer.resolve()))}",
        "",
        "[kernel]",
        'variant = "debug"',
        f"config = {json.dumps(items)}",
        "",
        "[[steps]]",
        'name = "syz-repro"',
        'c = "repro.c"',
        f"timeout = {STEP_TIMEOUT}  # a syzkaller program loops until it is killed",
        "",
        "[expect]",
        "any_splat = true",
        "",
        "[runs]",
        "count = 10",
        f"timeout = {STEP_TIMEOUT + 120}",
        "",
    ]
    (target / BUNDLE_FILE).write_text("\n".join(lines))
    return target / BUNDLE_FILE
