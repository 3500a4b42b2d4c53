"""Kernel configuration from fragments: allnoconfig plus what the fragments ask for.

`make allnoconfig` with KCONFIG_ALLCONFIG set to the merged fragments turns on exactly what
we ask for (and what that needs), then olddefconfig settles the rest. Kconfig silently drops
an option whose dependencies are not met, so every requested value is checked afterwards.

A fragment is ours (`kernel_patches/configs/NAME.config`) or the kernel tree's own
(`tree:PATH`, read from the source being built, so another tree brings its own). The tree's
come first and ours on top. Ours must survive olddefconfig; what the tree's ask for is taken
as far as this kernel and our base allow (their `m` means `y`: our kernels have no modules),
and what was not taken is written beside the build (`TREE_OPTIONS_NOT_TAKEN`).

The `series` fragment holds the options our patch series adds (its own Kconfig symbols). They
are asked for only from a tree that defines them: a tree without the series, or with only
its first patches (`invoke patches.check`), would otherwise fail as if they had been dropped.
A tree that defines one must take it, as with any option of ours.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from harness.kernel.errors import KernelError
from harness.paths import PROJECT_ROOT
from harness.run import run

CONFIG_DIR = PROJECT_ROOT / "kernel_patches" / "configs"
SELFTESTS_FRAGMENT = "tree:tools/testing/selftests/net/mptcp/config"
SERIES_FRAGMENT = "series"
VARIANTS = {
    "normal": (SELFTESTS_FRAGMENT, "base", "net", "mptcp", SERIES_FRAGMENT, "kunit", "lkdtm"),
    "debug": ("tree:kernel/configs/debug.config", SELFTESTS_FRAGMENT,
              "base", "net", "mptcp", SERIES_FRAGMENT, "kunit", "lkdtm", "debug"),
    # gcov counters of net/mptcp (invoke test --coverage, invoke selftests --coverage)
    "coverage": (SELFTESTS_FRAGMENT, "base", "net", "mptcp", SERIES_FRAGMENT, "kunit",
                 "lkdtm", "coverage"),
    # proves a series changes nothing when MPTCP is compiled out (invoke patches.check)
    "no-mptcp": ("base", "net", "no-mptcp"),
}
ITEM = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.+)$")
NOT_SET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
ARCH = "x86_64"
CONFIG_TIMEOUT = 300.0
TREE = "tree:"
TREE_OPTIONS_NOT_TAKEN = "mlab-tree-options-not-taken"
KCONFIG_SYMBOL = re.compile(rb"^[ \t]*(?:menu)?config[ \t]+([A-Za-z0-9_]+)[ \t]*$", re.M)


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


@dataclass(frozen=True)
class Wanted:
    """The options a build asks for, which of them only the tree's own fragments named, and
    which only the series fragment named."""

    values: dict[str, str]
    from_tree: frozenset[str] = frozenset()
    from_series: frozenset[str] = frozenset()

    def __getitem__(self, key: str) -> str:
        return self.values[key]

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(key, default)


def requested(variant: str, items: list[str] = (), config_dir: Path = CONFIG_DIR,
              tree: Path | None = None) -> Wanted:
    """Everything the variant's fragments and the --config-item flags ask for.

    Without `tree`, the tree's own fragments are left out (what we ask for, alone)."""
    if variant not in VARIANTS:
        raise KernelError(f"unknown --variant {variant!r}: use one of {', '.join(VARIANTS)}")
    from_tree: dict[str, str] = {}
    ours: dict[str, str] = {}
    series: dict[str, str] = {}
    for name in VARIANTS[variant]:
        if name.startswith(TREE):
            if tree is not None:
                from_tree.update(tree_fragment(tree, name.removeprefix(TREE)))
        else:
            path = config_dir / f"{name}.config"
            values = parse(path.read_text(), str(path))
            (series if name == SERIES_FRAGMENT else ours).update(values)
    for item in items:
        ours.update(parse(item if item.startswith("CONFIG_") else f"CONFIG_{item}",
                          "--config-item"))
    return Wanted({**from_tree, **series, **ours},
                  frozenset(from_tree.keys() - ours.keys() - series.keys()),
                  frozenset(series.keys() - ours.keys()))


def tree_fragment(tree: Path, relative: str) -> dict[str, str]:
    """A fragment the kernel tree ships, its modules built in; a tree without it gives none."""
    path = tree / relative
    if not path.is_file():
        return {}
    values = parse(path.read_text(), str(path))
    return {key: "y" if value == "m" else value for key, value in values.items()}


def fingerprint(wanted: Wanted) -> str:
    text = "\n".join(f"{k}={v}" for k, v in sorted(wanted.values.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def dropped(wanted: dict[str, str], actual: dict[str, str]) -> list[str]:
    """Requested options whose value did not survive (n also means: absent)."""
    return [f"{key}={value} (got {actual.get(key, 'not set')})"
            for key, value in sorted(wanted.items())
            if actual.get(key, "n") != value]


def symbols_defined(tree: Path, options: frozenset[str]) -> frozenset[str]:
    """The options of `options` (CONFIG_X) that a Kconfig file of the tree defines."""
    if not options:
        return frozenset()
    defined = set()
    for path in tree.rglob("Kconfig*"):
        if path.is_file():
            names = KCONFIG_SYMBOL.findall(path.read_bytes())
            defined.update(f"CONFIG_{name.decode()}" for name in names)
    return frozenset(options & defined)


def for_tree(wanted: Wanted, tree: Path) -> Wanted:
    """`wanted` without the series' options that this tree does not define."""
    absent = wanted.from_series - symbols_defined(tree, wanted.from_series)
    return Wanted({k: v for k, v in wanted.values.items() if k not in absent},
                  wanted.from_tree, wanted.from_series - absent)


def configure(tree: Path, build_dir: Path, wanted: Wanted) -> list[str]:
    """Write build_dir/.config from allnoconfig + wanted (less the series' options the tree
    does not define); fail naming any of our options that was dropped. Returns the tree's
    own options that were not taken (also written to build_dir/TREE_OPTIONS_NOT_TAKEN)."""
    wanted = for_tree(wanted, tree)
    build_dir.mkdir(parents=True, exist_ok=True)
    merged = build_dir / "mlab-requested.config"
    merged.write_text("".join(f"{k}={v}\n" if v != "n" else f"# {k} is not set\n"
                              for k, v in sorted(wanted.values.items())))
    make = ["make", "-C", str(tree), f"O={build_dir}", f"ARCH={ARCH}"]
    run([*make, f"KCONFIG_ALLCONFIG={merged}", "allnoconfig"], timeout=CONFIG_TIMEOUT)
    run([*make, "olddefconfig"], timeout=CONFIG_TIMEOUT)
    actual = parse_config(build_dir / ".config")
    ours = {k: v for k, v in wanted.values.items() if k not in wanted.from_tree}
    lost = dropped(ours, actual)
    if lost:
        raise ConfigDropped(
            f"{len(lost)} requested kernel option(s) did not survive olddefconfig (unmet "
            f"dependencies or a typo): {', '.join(lost)}. Check them in "
            f"kernel_patches/configs/ or your --config-item; 'make O={build_dir} menuconfig' "
            f"shows what each depends on")
    not_taken = dropped({k: wanted.values[k] for k in wanted.from_tree}, actual)
    (build_dir / TREE_OPTIONS_NOT_TAKEN).write_text("".join(f"{o}\n" for o in not_taken))
    return not_taken


def tree_options_not_taken(build_dir: Path) -> list[str]:
    path = build_dir / TREE_OPTIONS_NOT_TAKEN
    return path.read_text().splitlines() if path.exists() else []


def options_lacking(build_dir: Path, items: tuple[str, ...]) -> list[str]:
    """The options of `items` that the build in build_dir was made without (its .config)."""
    path = build_dir / ".config"
    config = parse_config(path) if path.exists() else {}
    return [item for item in items if config.get(item) != "y"]


def parse_config(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if match := NOT_SET.match(line):
            values[match[1]] = "n"
        elif match := ITEM.match(line):
            values[match[1]] = match[2]
    return values
