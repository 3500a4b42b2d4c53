"""`invoke build`: source + patch series + configuration -> bzImage, cached and incremental.

One build directory per source and variant under the cache. The build record says what the
last build was made of; when nothing changed the build returns at once, otherwise make runs
(with ccache) and decides itself what to rebuild.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.kernel import build_lock, kconfig, patch_input, patches, source
from harness.kernel.errors import KernelError
from harness.kernel.layout import IMAGE, VMLINUX
from harness.kernel.progress import Progress
from harness.kernel.record import BuildRecord
from harness.paths import PROJECT_ROOT

DEFAULT_PATCHES = PROJECT_ROOT / "kernel_patches"
FIRST_ERRORS = 15


@dataclass(frozen=True)
class BuildRequest:
    cache: Path
    tree: str | None = None  # a user's tree instead of Debian's source
    patches_dir: Path | None = None  # another series; default kernel_patches/ (not with tree)
    no_patches: bool = False
    variant: str = "normal"
    config_items: tuple[str, ...] = ()
    jobs: int = os.cpu_count() or 1
    series_limit: int | None = None  # apply only the first N patches (invoke patches.check)
    purpose: str = ""  # a build directory of its own (e.g. "repro": bundles' kernels do not
    # replace the kernel `invoke build` made)


@dataclass(frozen=True)
class BuildResult:
    record: BuildRecord
    build_dir: Path
    log: Path | None  # None when nothing had to be built
    changed_files: tuple[str, ...]


def plan(request: BuildRequest) -> tuple[source.Source, list[patches.Patch], kconfig.Wanted]:
    """Resolve source, series and options; every user error surfaces here, before any work."""
    src = source.user_tree(request.tree) if request.tree else source.debian(request.cache)
    wanted = kconfig.requested(request.variant, list(request.config_items), tree=src.base)
    series_dir = request.patches_dir or (None if request.tree else DEFAULT_PATCHES)
    series = [] if request.no_patches or series_dir is None else \
        patch_input.read_patches(series_dir, request.cache / "patches")  # mbox pieces
    return src, series[:request.series_limit], wanted


def build_dir_of(request: BuildRequest, src: source.Source) -> Path:
    patched = "-patched" if src.kind == "tree" and _wants_series(request) else ""
    purpose = f"-{request.purpose}" if request.purpose else ""
    return request.cache / "build" / f"{src.key}{patched}-{request.variant}{purpose}"


def _wants_series(request: BuildRequest) -> bool:
    return request.patches_dir is not None and not request.no_patches


def build(request: BuildRequest) -> BuildResult:
    src, series, wanted = plan(request)
    build_dir = build_dir_of(request, src)
    with build_lock.held(build_dir.parent, f"build of {build_dir.name}"):
        return _build(request, src, series, wanted, build_dir)


def _build(request: BuildRequest, src: source.Source, series: list[patches.Patch],
           wanted: kconfig.Wanted, build_dir: Path) -> BuildResult:
    """The build, under the cache's build lock: up to date, or patched, configured, made."""
    record = BuildRecord(src.id, [[p.name, p.sha256] for p in series],
                         kconfig.fingerprint(wanted), str(build_dir / IMAGE),
                         str(build_dir / VMLINUX))
    previous = BuildRecord.load(build_dir)
    if previous is not None and previous.up_to_date(record) and \
            _tree_holds(request, src, record.patches):
        return BuildResult(previous, build_dir, None, ())
    tree, changed = _prepared_tree(request, src, series)
    if _needs_configure(previous, record, build_dir):
        kconfig.configure(tree, build_dir, wanted)
    log = build_dir / "build.log"
    _make(tree, build_dir, request, log)
    record.save(build_dir)
    return BuildResult(record, build_dir, log, tuple(changed))


def _needs_configure(previous: BuildRecord | None, record: BuildRecord, build_dir: Path) -> bool:
    """Other options, or another series: a series may define options of its own (the series
    fragment), and a configuration made without them would let make give them their
    defaults. Configuring again rebuilds nothing that the same .config would not."""
    return previous is None or previous.config != record.config or \
        previous.patches != record.patches or not (build_dir / ".config").exists()


def _tree_holds(request: BuildRequest, src: source.Source, series: list[list[str]]) -> bool:
    """Whether the tree make would run in holds `series` ([name, sha256]). Builds of every
    variant share one working copy: another series may have gone into it since this build
    (a bundle's revert), and a kernel whose sources are not its own would be debugged,
    covered or given selftests from the wrong text. A user's tree built in place is as
    the user left it."""
    if src.kind == "tree" and not series:
        return True
    return patches.applied_series(_working_copy(request, src)) == series


def _working_copy(request: BuildRequest, src: source.Source) -> Path:
    return request.cache / "src" / src.key / "patched"


def _prepared_tree(request: BuildRequest, src: source.Source,
                   series: list[patches.Patch]) -> tuple[Path, list[str]]:
    """The tree make runs in.

    Debian's source always builds from its hard-link working copy, even with no patch, so
    that the source path (part of every compiler command line) stays the same when a series
    comes or goes: a new path would make Kbuild rebuild everything. A user's tree builds in
    place unless a series is asked for (its build directory is then a separate one).
    """
    if src.kind == "tree" and not series:
        return src.base, []
    work = _working_copy(request, src)
    patches.ensure_working_copy(src.base, work)
    return work, patches.apply_series(src.base, work, series)


# ccache is not told about files an assembler source pulls in with .incbin: piggy.S, which
# wraps the compressed vmlinux into the bzImage, is the same text whenever that payload has
# the same size, and ccache then returns a piggy.o holding another build's kernel. So
# vmlinux is built with ccache and the bzImage around it (a dozen small files) without.
MAKE_STAGES = (("vmlinux", {}), ("bzImage", {"CCACHE_DISABLE": "1"}))
# With CONFIG_GDB_SCRIPTS, the kernel's gdb helpers (vmlinux-gdb.py beside vmlinux, and the
# constants they are generated with) for invoke gdb; `make all` would build them, vmlinux not.
GDB_SCRIPTS_STAGE = ("scripts_gdb", {})


# With CONFIG_GCOV_KERNEL (the coverage variant), gcov profiles net/mptcp and nothing else.
# A variable on make's command line is expanded where it is used and wins over the
# directories' own GCOV_PROFILE lines, so this one is y while Kbuild builds net/mptcp and
# empty (not profiled) everywhere else; make hands it to every sub-make as written.
GCOV_MPTCP_ONLY = "GCOV_PROFILE=$(if $(filter net/mptcp,$(obj)),y)"


def make_variables(build_dir: Path) -> list[str]:
    return [] if kconfig.options_lacking(build_dir, ("CONFIG_GCOV_KERNEL",)) \
        else [GCOV_MPTCP_ONLY]


def make_stages(build_dir: Path) -> tuple[tuple[str, dict[str, str]], ...]:
    wants_gdb = not kconfig.options_lacking(build_dir, ("CONFIG_GDB_SCRIPTS",))
    return (*MAKE_STAGES, GDB_SCRIPTS_STAGE) if wants_gdb else MAKE_STAGES


def _make(tree: Path, build_dir: Path, request: BuildRequest, log: Path) -> None:
    argv = ["make", "-C", str(tree), f"O={build_dir}", f"ARCH={kconfig.ARCH}",
            "CC=ccache gcc", f"-j{request.jobs}", *make_variables(build_dir)]
    # depend mode: on a miss ccache takes the dependencies from the compiler's -MD output
    # instead of running the preprocessor first; that extra run made a cold build 37% slower
    # base dir: paths under the cache are hashed relative to the build directory, so another
    # cache laid out the same way hits the same entries
    env = {**os.environ, "CCACHE_DIR": str(request.cache / "ccache"), "CCACHE_DEPEND": "1",
           "CCACHE_BASEDIR": str(request.cache.resolve()), "CCACHE_NOHASHDIR": "1"}
    steps_file = build_dir / "mlab-steps"
    expected = int(steps_file.read_text()) if steps_file.exists() else None
    progress = Progress(expected)
    with log.open("w", buffering=1) as out:  # line-buffered: tail -f works
        try:
            for target, extra in make_stages(build_dir):
                code = _run_make([*argv, target], {**env, **extra}, out, progress)
                if code != 0:
                    break
        finally:
            progress.done()
    if code != 0:
        raise KernelError(f"kernel build failed (make exit {code}); first errors:\n"
                          + "\n".join(first_errors(log)) + f"\nfull log: {log}")
    if expected is None or progress.steps > expected:
        steps_file.write_text(str(progress.steps))


def _run_make(argv: list[str], env: dict[str, str], out, progress: Progress) -> int:
    out.write("$ " + " ".join(argv) + "\n")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, stdin=subprocess.DEVNULL)
    try:
        for line in proc.stdout:
            out.write(line)
            progress.feed(line)
        return proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise


def first_errors(log: Path, limit: int = FIRST_ERRORS) -> list[str]:
    """The first compiler/linker error lines of a build log (with the line before each)."""
    lines = log.read_text(errors="replace").splitlines()
    found = []
    for i, line in enumerate(lines):
        if " error: " in line or line.startswith(("make: ***", "ld: ")) or "Error " in line:
            if i and lines[i - 1] not in found and "In function" in lines[i - 1]:
                found.append(lines[i - 1])
            found.append(line)
        if len(found) >= limit:
            break
    return found or lines[-limit:]


def image_path(request: BuildRequest) -> Path:
    """Where the bzImage of this request is (or will be) without building anything."""
    src, _series, _wanted = plan(request)
    return build_dir_of(request, src) / IMAGE


LAST_IMAGE = "last-image"


def remember_last_image(cache: Path, image: Path) -> None:
    """Note which kernel `invoke build` made last, for `invoke boot` to boot by default."""
    (cache / LAST_IMAGE).write_text(f"{image}\n")


def last_image(cache: Path) -> Path:
    """The kernel `invoke build` made last, else where the default build puts its image."""
    noted = cache / LAST_IMAGE
    if noted.exists():
        return Path(noted.read_text().strip())
    return image_path(BuildRequest(cache=cache))
