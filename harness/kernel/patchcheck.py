"""`invoke patches.check`: checkpatch --strict on each patch, then a build after each patch.

The builds go through the normal build directory, one patch more each time, so every step
is incremental and the last one leaves the tree and build exactly as `invoke build` wants
them. The first patch whose build fails stops the walk: the later ones cannot be judged.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.kernel import build as kernel_build
from harness.kernel import patches
from harness.kernel.errors import KernelError
from harness.run import run

SUMMARY = re.compile(r"total: (\d+) errors, (\d+) warnings, (?:(\d+) checks, )?\d+ lines checked")
CHECKPATCH_TIMEOUT = 300.0


@dataclass
class PatchReport:
    name: str
    checkpatch: str = "not run"
    checkpatch_clean: bool = False
    checkpatch_output: str = ""
    build: str = "not built"
    build_ok: bool | None = None
    build_seconds: float = 0.0
    build_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.checkpatch_clean and self.build_ok is True


def checkpatch(tree: Path, patch: Path) -> tuple[bool, str, str]:
    """(clean, "0 errors, 0 warnings, 0 checks", full output) for one patch, --strict."""
    script = tree / "scripts" / "checkpatch.pl"
    if not script.exists():
        raise KernelError(f"{script}: no checkpatch.pl in the kernel tree")
    argv = ["perl", str(script), "--strict", "--showfile"]
    if not (tree / ".git").exists():
        # checkpatch looks a "commit <id>" up with git: a tree without history (Debian's
        # source) knows no commit, and every upstream reference would be a warning
        argv += ["--ignore", "UNKNOWN_COMMIT_ID"]
    result = run([*argv, str(patch)], cwd=tree, check=False, timeout=CHECKPATCH_TIMEOUT)
    output = (result.stdout + result.stderr).strip()
    match = SUMMARY.search(output)
    if match is None:
        raise KernelError(f"checkpatch gave no summary for {patch}:\n{output[-2000:]}")
    errors, warnings, checks = (int(n or 0) for n in match.groups())
    clean = result.returncode == 0 and errors == warnings == checks == 0
    return clean, f"{errors} errors, {warnings} warnings, {checks} checks", output


def check_series(request: kernel_build.BuildRequest, build_each: bool = True
                 ) -> list[PatchReport]:
    """Checkpatch every patch of the request's series; build after each one in turn."""
    src, series, _ = kernel_build.plan(request)
    if not series:
        raise KernelError("the series is empty: nothing to check (see kernel_patches/series "
                          "or --patches DIR|MBOX)")
    reports = [PatchReport(p.name) for p in series]
    for patch, report in zip(series, reports, strict=True):
        clean, summary, output = checkpatch(src.base, patch.path)
        report.checkpatch, report.checkpatch_clean = summary, clean
        report.checkpatch_output = "" if clean else output
    if build_each:
        _build_each(request, reports)
    return reports


def _build_each(request: kernel_build.BuildRequest, reports: list[PatchReport]) -> None:
    for number, report in enumerate(reports, start=1):
        started = time.monotonic()
        try:
            kernel_build.build(replace(request, series_limit=number))
        except patches.PatchFailed as exc:
            report.build, report.build_ok, report.build_errors = "does not apply", False, \
                [str(exc)]
            return
        except KernelError as exc:
            report.build, report.build_ok = "FAILED", False
            report.build_errors = str(exc).splitlines()
            return
        finally:
            report.build_seconds = time.monotonic() - started
        report.build, report.build_ok = "ok", True


def first_broken(reports: list[PatchReport]) -> PatchReport | None:
    return next((r for r in reports if r.build_ok is False), None)


def table(reports: list[PatchReport]) -> str:
    width = max(len(r.name) for r in reports)
    lines = [f"{'patch':<{width}}  {'checkpatch --strict':<32}  build"]
    for report in reports:
        built = report.build
        if report.build_ok is not None:
            built += f" ({report.build_seconds:.0f} s)"
        lines.append(f"{report.name:<{width}}  {report.checkpatch:<32}  {built}")
    return "\n".join(lines)
