"""Kernel configuration from fragments: allnoconfig plus what the fragments ask for.

`make allnoconfig` with KCONFIG_ALLCONFIG set to the merged fragments turns on exactly what
we ask for (and what that needs), then olddefconfig settles the rest. Kconfig silently drops
an option whose dependencies are not met, so every requested value is checked afterwards.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from harness.kernel.errors import KernelError
from harness.paths import PROJECT_ROOT
from harness.run import run

CONFIG_DIR = PROJECT_ROOT / "kernel_patches" / "configs"
VARIANTS = {
    "normal": ("base", "net", "mptcp", "kunit", "lkdtm"),
    "debug": ("base", "net", "mptcp", "kunit", "lkdtm", "debug"),
    # proves a series changes nothing when MPTCP is compiled out (invoke patches.check)
    "no-mptcp": ("base", "net", "no-mptcp"),
}
ITEM = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.+)$")
NOT_SET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
ARCH = "x86_64"
CONFIG_TIMEOUT = 300.0


class ConfigDropped(KernelError):
    pass


def parse(text: str, origin: str) -> dict[str, str]:
    """CONFIG_X=value and '# CONFIG_X is not set' (as n) lines of a fragment or .config."""
    values = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if match := NOT_SET.match(line):
            values[match[1]] = "n"
        elif match := ITEM.match(line):
            values[match[1]] = match[2]
        elif line and not line.startswith("#"):
            raise KernelError(f"{origin}:{number}: not a CONFIG_X=value line: {line!r}")
    return values


def requested(variant: str, items: list[str] = (), config_dir: Path = CONFIG_DIR
              ) -> dict[str, str]:
    """Everything the variant's fragments and the --config-item flags ask for."""
    if variant not in VARIANTS:
        raise KernelError(f"unknown --variant {variant!r}: use one of {', '.join(VARIANTS)}")
    values: dict[str, str] = {}
    for name in VARIANTS[variant]:
        path = config_dir / f"{name}.config"
        values.update(parse(path.read_text(), str(path)))
    for item in items:
        values.update(parse(item if item.startswith("CONFIG_") else f"CONFIG_{item}",
                            "--config-item"))
    return values


def fingerprint(values: dict[str, str]) -> str:
    text = "\n".join(f"{k}={v}" for k, v in sorted(values.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def dropped(wanted: dict[str, str], actual: dict[str, str]) -> list[str]:
    """Requested options whose value did not survive (n also means: absent)."""
    return [f"{key}={value} (got {actual.get(key, 'not set')})"
            for key, value in sorted(wanted.items())
            if actual.get(key, "n") != value]


def configure(tree: Path, build_dir: Path, wanted: dict[str, str]) -> None:
    """Write build_dir/.config from allnoconfig + wanted; fail naming any dropped option."""
    build_dir.mkdir(parents=True, exist_ok=True)
    merged = build_dir / "mlab-requested.config"
    merged.write_text("".join(f"{k}={v}\n" if v != "n" else f"# {k} is not set\n"
                              for k, v in sorted(wanted.items())))
    make = ["make", "-C", str(tree), f"O={build_dir}", f"ARCH={ARCH}"]
    run([*make, f"KCONFIG_ALLCONFIG={merged}", "allnoconfig"], timeout=CONFIG_TIMEOUT)
    run([*make, "olddefconfig"], timeout=CONFIG_TIMEOUT)
    lost = dropped(wanted, parse_config(build_dir / ".config"))
    if lost:
        raise ConfigDropped(
            f"{len(lost)} requested kernel option(s) did not survive olddefconfig (unmet "
            f"dependencies or a typo): {', '.join(lost)}. Check them in "
            f"kernel_patches/configs/ or your --config-item; 'make O={build_dir} menuconfig' "
            f"shows what each depends on")


def parse_config(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if match := NOT_SET.match(line):
            values[match[1]] = "n"
        elif match := ITEM.match(line):
            values[match[1]] = match[2]
    return values
