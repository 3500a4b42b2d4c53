"""A reproduction bundle: a bug report as data (`repro.toml` and the files it names).

The kernel to build, an optional topology built in the VM, the steps that trigger the bug,
what "reproduced" means, and how many runs. Every problem raises BundleError with one line
naming the file and the dotted key (`repros/x/repro.toml: steps[1].c: no file repro.c in
repros/x`). The format is documented in repros/README.md.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.kernel.kconfig import VARIANTS
from harness.topology import Topology, TopologyError, load_named
from harness.topology.loader import parse as parse_topology
from harness.validate import Where, array, table_of, typed

BUNDLE_FILE = "repro.toml"
STEP_KINDS = ("run", "shell", "python", "c", "selftest")
DEFAULT_RUNS = 10
DEFAULT_RUN_TIMEOUT = 300
DEFAULT_STEP_TIMEOUT = 120
STEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


class BundleError(HarnessError):
    pass


@dataclass(frozen=True)
class KernelSpec:
    patches: Path | None = None  # a series dir, format-patch dir or mbox; None: none
    variant: str = "debug"
    config: tuple[str, ...] = ()
    tree: str | None = None  # a user's git tree instead of Debian's source
    commit: str | None = None  # with tree: build this revision (in a worktree of the cache)


@dataclass(frozen=True)
class Step:
    name: str
    kind: str  # one of STEP_KINDS
    target: str | tuple[str, ...]  # the argv (run), else a file or a selftest script name
    args: tuple[str, ...] = ()
    host: str | None = None  # a host of the topology; None: the initial namespace
    env: dict[str, str] = field(default_factory=dict)
    background: bool = False
    timeout: int = DEFAULT_STEP_TIMEOUT


@dataclass(frozen=True)
class Expect:
    splat: str | None = None  # a regex over a splat's text
    any_splat: bool = False
    hang: bool = False
    step_failed: str | None = None
    output_step: str | None = None
    output_matches: str | None = None

    def describe(self) -> str:
        parts = []
        if self.splat:
            parts.append(f"a splat matching /{self.splat}/")
        if self.any_splat:
            parts.append("any kernel splat")
        if self.hang:
            parts.append("a hang")
        if self.step_failed:
            parts.append(f"step {self.step_failed!r} failing")
        if self.output_step:
            parts.append(f"step {self.output_step!r} printing /{self.output_matches}/")
        return " or ".join(parts)


@dataclass(frozen=True)
class Bundle:
    path: Path  # the bundle directory
    name: str
    summary: str
    kernel: KernelSpec
    topology: Topology | None
    steps: tuple[Step, ...]
    expect: Expect
    runs: int = DEFAULT_RUNS
    run_timeout: int = DEFAULT_RUN_TIMEOUT
    fix: str = ""
    origin: str = ""

    def file(self, name: str) -> Path:
        return self.path / name


def load(directory: str | Path) -> Bundle:
    """Read and validate the bundle in `directory` (or a repro.toml file given directly)."""
    path = Path(directory)
    if path.is_file() and path.name == BUNDLE_FILE:
        path = path.parent
    spec = path / BUNDLE_FILE
    if not path.is_dir():
        raise BundleError(f"{path}: no such bundle directory")
    try:
        data = tomllib.loads(spec.read_text())
    except FileNotFoundError:
        raise BundleError(f"{spec}: missing (a bundle is a directory with a {BUNDLE_FILE})") \
            from None
    except tomllib.TOMLDecodeError as exc:
        raise BundleError(f"{spec}: TOML syntax error: {exc}") from None
    return parse(data, spec)


def parse(data: dict, spec: Path) -> Bundle:
    where = Where(spec, error=BundleError)
    top = table_of(data, where, {"summary", "fix", "origin", "kernel", "topology", "steps",
                                 "expect", "runs"}, {"summary", "steps", "expect"})
    directory = spec.parent
    topology = _topology(top.get("topology"), where / "topology", directory)
    steps = _steps(top["steps"], where / "steps", directory, topology)
    runs = table_of(top.get("runs", {}), where / "runs", {"count", "timeout"})
    return Bundle(
        path=directory.resolve(), name=directory.resolve().name,
        summary=typed(top["summary"], where / "summary", str, "a string"),
        kernel=_kernel(top.get("kernel", {}), where / "kernel", directory),
        topology=topology, steps=steps,
        expect=_expect(top["expect"], where / "expect", steps),
        runs=_positive(runs.get("count", DEFAULT_RUNS), where / "runs" / "count"),
        run_timeout=_positive(runs.get("timeout", DEFAULT_RUN_TIMEOUT),
                              where / "runs" / "timeout"),
        fix=typed(top.get("fix", ""), where / "fix", str, "a string"),
        origin=typed(top.get("origin", ""), where / "origin", str, "a string"))


def _positive(value, where: Where) -> int:
    if typed(value, where, int, "a positive integer") <= 0:
        raise where.error(f"expected a positive integer, got {value!r}")
    return value


def _strings(value, where: Where) -> tuple[str, ...]:
    items = array(value, where)
    for i, item in enumerate(items):
        typed(item, where / i, str, "a string")
    return tuple(items)


def _existing(value, where: Where, directory: Path) -> Path:
    name = typed(value, where, str, "a file name")
    path = directory / name
    if not path.exists():
        raise where.error(f"no file {name} in {directory}")
    return path


def _kernel(value, where: Where, directory: Path) -> KernelSpec:
    kernel = table_of(value, where, {"patches", "variant", "config", "tree", "commit"})
    variant = typed(kernel.get("variant", "debug"), where / "variant", str, "a string")
    if variant not in VARIANTS:
        raise (where / "variant").error(f"unknown variant {variant!r} "
                                        f"(known: {', '.join(VARIANTS)})")
    config = _strings(kernel.get("config", []), where / "config")
    for i, item in enumerate(config):
        if not re.match(r"^CONFIG_[A-Za-z0-9_]+=.+$", item):
            raise (where / "config" / i).error(f"not a CONFIG_X=value item: {item!r}")
    patches = kernel.get("patches")
    tree = typed(kernel.get("tree"), where / "tree", (str, type(None)), "a path")
    commit = typed(kernel.get("commit"), where / "commit", (str, type(None)), "a revision")
    if commit and not tree:
        raise (where / "commit").error("a commit needs a tree")
    return KernelSpec(
        patches=_existing(patches, where / "patches", directory).resolve() if patches else None,
        variant=variant, config=config, tree=tree, commit=commit)


def _topology(value, where: Where, directory: Path) -> Topology | None:
    if value is None:
        return None
    chosen = table_of(value, where, {"name", "file", "inline"})
    if len(chosen) != 1:
        raise where.error("give exactly one of name, file, inline")
    try:
        if "name" in chosen:
            return load_named(typed(chosen["name"], where / "name", str, "a topology name"))
        if "file" in chosen:
            return load_named(str(_existing(chosen["file"], where / "file", directory)))
        return parse_topology(table_of(chosen["inline"], where / "inline", None),
                              Path(f"{where.path}[topology.inline]"))
    except TopologyError as exc:
        raise where.error(str(exc)) from None


def _steps(value, where: Where, directory: Path, topology: Topology | None
           ) -> tuple[Step, ...]:
    items = array(value, where)
    if not items:
        raise where.error("a bundle needs at least one step")
    steps = tuple(_step(item, where / i, i, directory, topology) for i, item in enumerate(items))
    names = [s.name for s in steps]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise (where / i / "name").error(f"step name {name!r} is used twice")
    if all(s.background for s in steps):
        raise where.error("every step is in the background: nothing to wait for")
    return steps


def _step(value, where: Where, index: int, directory: Path, topology: Topology | None) -> Step:
    step = table_of(value, where, {"name", *STEP_KINDS, "args", "host", "env", "background",
                                   "timeout"})
    kinds = [k for k in STEP_KINDS if k in step]
    if len(kinds) != 1:
        raise where.error(f"give exactly one of {', '.join(STEP_KINDS)}")
    kind = kinds[0]
    name = typed(step.get("name", f"step-{index + 1}"), where / "name", str, "a string")
    if not STEP_NAME.match(name):
        raise (where / "name").error(f"{name!r}: use letters, digits, '.', '_', '-'")
    if kind == "run":
        target: str | tuple[str, ...] = _strings(step["run"], where / "run")
        if not target:
            raise (where / "run").error("an empty argv")
        if "args" in step:
            raise (where / "args").error("args go into the run argv itself")
    elif kind == "selftest":
        target = typed(step["selftest"], where / "selftest", str, "a script name")
        if "/" in target or not target.endswith(".sh"):
            raise (where / "selftest").error(
                f"{target!r}: name a script of tools/testing/selftests/net/mptcp (x.sh)")
    else:
        target = str(_existing(step[kind], where / kind, directory).resolve())
    host = typed(step.get("host"), where / "host", (str, type(None)), "a host name")
    if host is not None and (topology is None or host not in topology.hosts):
        known = ", ".join(topology.hosts) if topology else "the bundle has no topology"
        raise (where / "host").error(f"no host {host!r} ({known})")
    env = table_of(step.get("env", {}), where / "env", None)
    for key, item in env.items():
        typed(item, where / "env" / key, str, "a string")
    return Step(name, kind, target, _strings(step.get("args", []), where / "args"), host,
                dict(env), typed(step.get("background", False), where / "background", bool,
                                 "true or false"),
                _positive(step.get("timeout", DEFAULT_STEP_TIMEOUT), where / "timeout"))


def _expect(value, where: Where, steps: tuple[Step, ...]) -> Expect:
    expect = table_of(value, where, {"splat", "any_splat", "hang", "step_failed", "output"})
    if not expect:
        raise where.error("say what reproduced means: splat, any_splat, hang, step_failed "
                          "or output")
    names = [s.name for s in steps]
    splat = typed(expect.get("splat"), where / "splat", (str, type(None)), "a regex")
    _regex(splat, where / "splat")
    failed = typed(expect.get("step_failed"), where / "step_failed", (str, type(None)),
                   "a step name")
    if failed is not None and failed not in names:
        raise (where / "step_failed").error(f"no step {failed!r} (steps: {', '.join(names)})")
    output_step = output_matches = None
    if "output" in expect:
        output = table_of(expect["output"], where / "output", {"step", "matches"},
                          {"step", "matches"})
        output_step = typed(output["step"], where / "output" / "step", str, "a step name")
        if output_step not in names:
            raise (where / "output" / "step").error(f"no step {output_step!r} "
                                                    f"(steps: {', '.join(names)})")
        output_matches = typed(output["matches"], where / "output" / "matches", str, "a regex")
        _regex(output_matches, where / "output" / "matches")
    found = Expect(splat, typed(expect.get("any_splat", False), where / "any_splat", bool,
                                "true or false"),
                   typed(expect.get("hang", False), where / "hang", bool, "true or false"),
                   failed, output_step, output_matches)
    if not found.describe():
        raise where.error("every condition is off: nothing could ever count as reproduced")
    return found


def _regex(pattern: str | None, where: Where) -> None:
    if pattern is None:
        return
    try:
        re.compile(pattern)
    except re.error as exc:
        raise where.error(f"not a regular expression: {exc}") from None
