"""`invoke patches.export`: write the series from the git branch it is developed on.

A series is developed as commits in a kernel git tree and shipped as `git format-patch`
files plus a quilt `series` file. The export makes those files with the series' own
settings, kept in one place (`export.toml` beside the series): the identity it is sent
as, the subject prefix and the version. `git format-patch --from` sends every patch as
that identity; a commit authored by someone else keeps its author in an in-body From:
line, as the kernel's process wants. The hand-written part of the cover letter (title and
blurb) is carried over from the cover letter being replaced; git writes the rest
(shortlog, diffstat, base-commit). The `series` file keeps its comments: a patch takes
the line of the patch with the same subject (see series_lines).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.kernel import worktree
from harness.kernel.errors import KernelError
from harness.kernel.patches import series_entry
from harness.run import run
from harness.validate import Where, table_of, typed

SETTINGS_FILE = "export.toml"
COVER_LETTER = re.compile(r"^(?:v\d+-)?0000-cover-letter\.patch$")
PATCH_NUMBER = re.compile(r"^(?:v\d+-)?\d{4}-")  # "v2-0003-" of a format-patch file name
SHORTLOG_HEAD = re.compile(r"^\S.* \(\d+\):$")  # "Author Name (10):"
SUBJECT_PLACEHOLDER = "*** SUBJECT HERE ***"
BLURB_PLACEHOLDER = "*** BLURB HERE ***"
FORMAT_PATCH_TIMEOUT = 300.0


@dataclass(frozen=True)
class ExportSettings:
    name: str
    email: str
    subject_prefix: str  # "PATCH 6.12": git adds " vN" and " M/N"
    version: int

    @property
    def identity(self) -> str:
        return f"{self.name} <{self.email}>"


def load_settings(path: Path) -> ExportSettings:
    """The export settings of a series directory, or an error naming the file and key."""
    if not path.exists():
        raise KernelError(f"{path}: no export settings (an [author] table with name and "
                          f"email, a [subject] table with prefix and version)")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise KernelError(f"{path}: not valid TOML: {exc}") from None
    top = Where(path, error=KernelError)
    table_of(data, top, {"author", "subject"}, {"author", "subject"})
    author = table_of(data["author"], top / "author", {"name", "email"}, {"name", "email"})
    subject = table_of(data["subject"], top / "subject", {"prefix", "version"},
                       {"prefix", "version"})
    name = _text(author["name"], top / "author" / "name")
    email = _text(author["email"], top / "author" / "email")
    if "@" not in email or any(c in email for c in "<> "):
        raise (top / "author" / "email").error(f"not an e-mail address: {email!r}")
    version = typed(subject["version"], top / "subject" / "version", int, "an integer")
    if version < 1:
        raise (top / "subject" / "version").error(f"expected 1 or more, got {version}")
    return ExportSettings(name, email, _text(subject["prefix"], top / "subject" / "prefix"),
                          version)


def _text(value, where: Where) -> str:
    text = typed(value, where, str, "a string").strip()
    if not text or "\n" in text:
        raise where.error(f"expected one non-empty line, got {value!r}")
    return text


@dataclass(frozen=True)
class CoverText:
    title: str
    blurb: str


def cover_text(cover_letter: Path) -> CoverText:
    """The hand-written title and blurb of a format-patch cover letter."""
    header, _, body = cover_letter.read_text().partition("\n\n")
    subject = re.search(r"^Subject: (.*(?:\n[ \t].*)*)", header, re.MULTILINE)
    if subject is None:
        raise KernelError(f"{cover_letter}: no Subject: header")
    title = re.sub(r"\s*\n[ \t]+", " ", subject[1])
    title = re.sub(r"^\[[^]]*\]\s*", "", title).strip()
    blurb = []
    for line in body.splitlines():
        if SHORTLOG_HEAD.match(line):
            break
        blurb.append(line)
    return CoverText(title, "\n".join(blurb).strip())


def check_series_range(tree: Path, base: str, head: str) -> None:
    """Refuse base..head unless it is a linear history of at least one commit."""
    worktree.git_dir_of(tree)
    base_id, head_id = worktree.resolve(tree, base), worktree.resolve(tree, head)
    listed = run(["git", "-C", str(tree), "rev-list", "--parents",
                  f"{base_id}..{head_id}"]).stdout.split("\n")
    commits = [line.split() for line in listed if line.strip()]
    if not commits:
        raise KernelError(f"{tree}: no commit between {base} and {head}: nothing to export")
    merges = [c[0][:12] for c in commits if len(c) > 2]
    if merges:
        raise KernelError(f"{tree}: {base}..{head} has merge commits ({', '.join(merges)}): "
                          f"a series is a linear list of patches")


def format_patches(tree: Path, base: str, head: str, settings: ExportSettings,
                   into: Path) -> list[Path]:
    """git format-patch of base..head into `into`: the cover letter first, then the patches."""
    name_email = ["-c", f"user.name={settings.name}", "-c", f"user.email={settings.email}"]
    argv = ["git", "-C", str(tree), *name_email, "format-patch", "--output-directory",
            str(into), "--numbered", "--cover-letter", f"--from={settings.identity}",
            f"--subject-prefix={settings.subject_prefix}", f"--base={base}",
            f"--reroll-count={settings.version}", f"{base}..{head}"]
    written = run(argv, timeout=FORMAT_PATCH_TIMEOUT).stdout.split()
    return [Path(p) if Path(p).is_absolute() else tree / p for p in written]


def fill_cover_letter(path: Path, cover: CoverText | None) -> None:
    if cover is None:
        return
    text = path.read_text()
    for placeholder in (SUBJECT_PLACEHOLDER, BLURB_PLACEHOLDER):
        if placeholder not in text:
            raise KernelError(f"{path}: git wrote no {placeholder!r} to fill")
    path.write_text(text.replace(SUBJECT_PLACEHOLDER, cover.title, 1)
                    .replace(BLURB_PLACEHOLDER, cover.blurb, 1))


def subject_slug(name: str) -> str:
    """The part of a format-patch file name that comes from the subject."""
    return PATCH_NUMBER.sub("", name).removesuffix(".patch")


def series_lines(old: list[str], names: list[str]) -> list[str]:
    """The series file's lines for the new patches `names`, its comments kept.

    A new patch takes the line of the old one with the same subject, or else, if its
    subject is new, the line at its own place when the old patch there is gone (a reworded
    subject); any other goes right after the patch before it. Where that would not list the
    patches in their order (the series was reordered), the N-th patch line names the N-th
    new patch instead, and patches beyond the old count come last."""
    entries = [series_entry(line) for line in old]
    old_slugs = {subject_slug(entry) for entry in entries if entry}
    by_slug = {subject_slug(name): name for name in names}
    lines, place = [], 0
    for line, entry in zip(old, entries, strict=True):
        if not entry:
            lines.append(line)
            continue
        if subject_slug(entry) in by_slug:
            lines.append(by_slug[subject_slug(entry)])
        elif place < len(names) and subject_slug(names[place]) not in old_slugs:
            lines.append(names[place])
        place += 1
    for i, name in enumerate(names):
        if name not in lines:
            lines.insert(lines.index(names[i - 1]) + 1 if i else _first_entry(lines), name)
    if [line for line in lines if line in names] == names:
        return lines
    return _by_position(old, names)


def _first_entry(lines: list[str]) -> int:
    return next((i for i, line in enumerate(lines) if series_entry(line)), len(lines))


def _by_position(old: list[str], names: list[str]) -> list[str]:
    new, remaining = [], list(names)
    for line in old:
        if series_entry(line):
            if remaining:
                new.append(remaining.pop(0))
            continue
        new.append(line)
    return new + remaining


@dataclass(frozen=True)
class Exported:
    cover_letter: Path
    patches: list[Path]
    removed: list[str]
    cover_filled: bool


def export(tree: Path, base: str, head: str, out: Path,
           settings: ExportSettings | None = None) -> Exported:
    """Replace the series in `out` with base..head of `tree`, written as `settings` say
    (default: out/export.toml)."""
    settings = settings or load_settings(out / SETTINGS_FILE)
    check_series_range(tree, base, head)
    series_file = out / "series"
    old_lines = series_file.read_text().splitlines() if series_file.exists() else []
    old_names = [name for name in map(series_entry, old_lines) if name]
    old_covers = sorted(p for p in out.glob("*.patch") if COVER_LETTER.match(p.name))
    cover = cover_text(old_covers[-1]) if old_covers else None
    with tempfile.TemporaryDirectory(prefix="mlab-export-") as tmp:
        written = format_patches(tree, base, head, settings, Path(tmp))
        fill_cover_letter(written[0], cover)
        names = [p.name for p in written]
        for path in written:
            shutil.move(path, out / path.name)  # /tmp may be another filesystem
    removed = sorted({*old_names, *(p.name for p in old_covers)} - set(names))
    for name in removed:
        (out / name).unlink(missing_ok=True)
    series_file.write_text("\n".join(series_lines(old_lines, names[1:])) + "\n")
    return Exported(out / names[0], [out / n for n in names[1:]], removed, cover is not None)
