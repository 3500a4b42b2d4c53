"""Patch input as developers have it: a series file, format-patch output, an mbox.

The fixtures are made by git itself: a tiny repository with two commits on a base, and
`git format-patch` run on it (-o, --cover-letter, --stdout, -v2, -N). Every form must give
the same patches (names and their slugs, order, files) and apply to a copy of the base.
"""

import email
import os
import shutil
import subprocess
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from harness.kernel import patchcheck
from harness.kernel.build import BuildRequest, build
from harness.kernel.errors import KernelError
from harness.kernel.patch_input import format_patch_name, parse_subject, read_patches
from harness.kernel.patches import apply_series, ensure_working_copy
from harness.kernel.record import BuildRecord, patch_slug

DATA = Path(__file__).parent / "data"
PROTOCOL, CTRL = "net/mptcp/protocol.c", "net/mptcp/ctrl.c"
BASE = {
    "Makefile": "# top Makefile\n",
    PROTOCOL: "// SPDX-License-Identifier: GPL-2.0\nstatic int mptcp_answer(void)\n{\n"
              "\tint answer = 41;\t/* a comment long enough that a quoted-printable mail "
              "has to wrap this line */\n\n\treturn answer;\n}\n",
    CTRL: "// SPDX-License-Identifier: GPL-2.0\nstatic int fallback_after = 3;\n",
}
FIRST = "mptcp: answer correctly"
# non-ASCII (an RFC 2047 subject), punctuation, and too long for a format-patch file name
SECOND = "mptcp: pm: don't give up… after 3 SYNs when the peer's limits are reached (again)"
GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "Lab Dev", "GIT_AUTHOR_EMAIL": "dev@example.invalid",
           "GIT_COMMITTER_NAME": "Lab Dev", "GIT_COMMITTER_EMAIL": "dev@example.invalid",
           "GIT_AUTHOR_DATE": "2025-11-20T10:00:00+00:00",
           "GIT_COMMITTER_DATE": "2025-11-20T10:00:00+00:00"}


@dataclass(frozen=True)
class Repo:
    path: Path
    base: Path  # the base commit's files, as a tree to apply to
    final: dict[str, str]  # the files after both commits

    def git(self, *args: str) -> str:
        env = {**os.environ, **GIT_ENV}
        return subprocess.run(["git", "-C", str(self.path), *args], env=env, check=True,
                              capture_output=True, text=True).stdout

    def format_patch(self, out: Path, *args: str) -> list[Path]:
        self.git("format-patch", "-q", "-o", str(out), *args, "base..HEAD")
        return sorted(out.iterdir())

    def mbox(self, path: Path, *args: str) -> Path:
        path.write_text(self.git("format-patch", "--stdout", *args, "base..HEAD"))
        return path


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    top = tmp_path_factory.mktemp("repo")
    repo = Repo(top / "git", top / "base", {})
    write_tree(repo.base, BASE)
    shutil.copytree(repo.base, repo.path)
    repo.git("init", "-q")
    repo.git("add", ".")
    repo.git("commit", "-q", "-m", "base")
    repo.git("tag", "base")
    final = dict(BASE)
    final[PROTOCOL] = BASE[PROTOCOL].replace("= 41;", "= 42;")
    final[CTRL] = BASE[CTRL].replace("= 3;", "= 5;")
    message = {PROTOCOL: f"{FIRST}\n\nFrom now on the answer is 42.\n",
               CTRL: f"{SECOND}\n\nFive SYNs.\n"}
    for name in (PROTOCOL, CTRL):
        (repo.path / name).write_text(final[name])
        repo.git("commit", "-q", "-a", "-s", "-m", message[name])
    return Repo(repo.path, repo.base, final)


def summary(patches) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(p.name, p.sha256, p.files) for p in patches]


def applied(repo: Repo, work: Path, patches) -> dict[str, str]:
    ensure_working_copy(repo.base, work)
    apply_series(repo.base, work, patches)
    return {name: (work / name).read_text() for name in BASE}


def test_a_format_patch_directory_is_read_like_a_series_file(repo, tmp_path):
    files = repo.format_patch(tmp_path / "out")
    plain = read_patches(tmp_path / "out", tmp_path / "pieces")
    assert [p.path for p in plain] == files
    assert [p.files for p in plain] == [(PROTOCOL,), (CTRL,)]
    assert [patch_slug(p.name) for p in plain] == [
        "mptcp-answer-correctly", "mptcp-pm-don-t-give-up-after-3-SYNs-when-the-peer-s-"]
    (tmp_path / "out" / "series").write_text("".join(f"{f.name}\n" for f in files))
    assert summary(read_patches(tmp_path / "out", tmp_path / "pieces")) == summary(plain)
    assert applied(repo, tmp_path / "work", plain) == repo.final


def test_the_cover_letter_is_skipped(repo, tmp_path):
    files = repo.format_patch(tmp_path / "out", "--cover-letter")
    assert files[0].name == "0000-cover-letter.patch"
    cover = tmp_path / "out" / "0000-cover-letter.patch"
    cover.rename(cover.with_name("0000-intro.patch"))  # a cover letter known by its 0/2 only
    patches = read_patches(tmp_path / "out", tmp_path / "pieces")
    assert [p.path for p in patches] == files[1:]


@pytest.mark.parametrize("args", [(), ("--cover-letter",), ("-v2", "--cover-letter"), ("-N",)],
                         ids=["plain", "cover-letter", "v2", "unnumbered"])
def test_an_mbox_gives_the_files_format_patch_writes(repo, tmp_path, args):
    files = repo.format_patch(tmp_path / "out", *args)
    mbox = repo.mbox(tmp_path / "series.mbox", *args)
    patches = read_patches(mbox, tmp_path / "pieces")
    from_files = [f for f in files if "cover-letter" not in f.name]
    assert [p.name for p in patches] == [f.name for f in from_files]
    assert [p.path.read_bytes() for p in patches] == [f.read_bytes() for f in from_files]
    assert summary(patches) == summary(read_patches(tmp_path / "out", tmp_path / "pieces"))
    assert all(p.path.parent.parent == tmp_path / "pieces" for p in patches)
    assert applied(repo, tmp_path / "work", patches) == repo.final


def test_a_v2_mbox_and_a_v1_directory_match_by_slug(repo, tmp_path):
    files = repo.format_patch(tmp_path / "out")
    patches = read_patches(repo.mbox(tmp_path / "v2.mbox", "-v2"), tmp_path / "pieces")
    assert [p.name for p in patches][0] == "v2-0001-mptcp-answer-correctly.patch"
    assert patch_slug(patches[0].name) == patch_slug(files[0].name)
    record = BuildRecord("src", [[p.name, p.sha256] for p in patches], "", "", "")
    assert record.has_patch("mptcp-answer-correctly")


def test_reading_an_mbox_again_changes_no_file(repo, tmp_path):
    mbox = repo.mbox(tmp_path / "series.mbox")
    first = read_patches(mbox, tmp_path / "pieces")
    stamps = [p.path.stat().st_mtime_ns for p in first]
    again = read_patches(mbox, tmp_path / "pieces")
    assert summary(again) == summary(first)
    assert [p.path.stat().st_mtime_ns for p in again] == stamps


def list_mail(patch: Path | None, subject: str, body: str = "", number: int = 0) -> bytes:
    """One mail as a list subscriber saves it: a format-patch file re-sent quoted-printable
    (as git send-email does for long lines), or a mail written by hand."""
    mail = EmailMessage()
    if patch is not None:
        sent = email.message_from_bytes(patch.read_bytes().split(b"\n", 1)[1],
                                        policy=policy.default)
        subject, body = str(sent["Subject"]), sent.get_content()
    mail["From"] = "Lab Dev <dev@example.invalid>"
    mail["Date"] = f"Thu, 20 Nov 2025 10:0{number}:00 +0000"
    mail["Subject"] = subject
    mail["Message-Id"] = f"<{number}@example.invalid>"
    mail.set_content(body, cte="quoted-printable")
    return (f"From dev@example.invalid Thu Nov 20 10:0{number}:00 2025\n".encode()
            + mail.as_bytes() + b"\n")


REVIEW = "> -\tint answer = 41;\n> +\tint answer = 42;\n\nLooks right.\n"
FIXUP = ("What about this on top?\n\n--- a/net/mptcp/ctrl.c\n+++ b/net/mptcp/ctrl.c\n"
         "@@ -2 +2 @@\n-static int fallback_after = 5;\n+static int fallback_after = 6;\n")


def test_a_mailing_list_mbox_skips_cover_letter_and_replies(repo, tmp_path):
    """Replies are skipped, with or without a diff: neither a review nor a reviewer's fixup
    is part of the series. The patches arrived out of order and quoted-printable."""
    cover, first, second = repo.format_patch(tmp_path / "out", "--cover-letter")
    mbox = tmp_path / "thread.mbox"
    mbox.write_bytes(list_mail(cover, "", number=0) + list_mail(second, "", number=2)
                     + list_mail(None, f"Re: [PATCH 1/2] {FIRST}", REVIEW, number=3)
                     + list_mail(first, "", number=1)
                     + list_mail(None, "Re: [PATCH 2/2] mptcp: pm: ...", FIXUP, number=4))
    assert b"=3D 41;" in mbox.read_bytes()  # really quoted-printable
    patches = read_patches(mbox, tmp_path / "pieces")
    assert [p.name for p in patches] == [first.name, second.name]
    assert [p.files for p in patches] == [(PROTOCOL,), (CTRL,)]
    assert "message 4" in patches[0].origin and "message 2" in patches[1].origin
    assert applied(repo, tmp_path / "work", patches) == repo.final


def test_a_lore_mboxrd_unescapes_from_lines(repo, tmp_path):
    text = repo.mbox(tmp_path / "series.mbox").read_text().splitlines(keepends=True)
    lore = ["From mboxrd@z Thu Jan  1 00:00:00 1970\n" if line.startswith("From ") and
            line.endswith(" 2001\n") else ">" + line if line.startswith("From ") else line
            for line in text]
    assert ">From now on the answer is 42.\n" in lore
    (tmp_path / "lore.mbox").write_text("".join(lore))
    patches = read_patches(tmp_path / "lore.mbox", tmp_path / "pieces")
    assert "\nFrom now on the answer is 42.\n" in patches[0].path.read_text()
    assert applied(repo, tmp_path / "work", patches) == repo.final


def test_a_single_diff_file_is_one_patch(repo, tmp_path):
    diff = tmp_path / "all.diff"
    diff.write_text(repo.git("diff", "base", "HEAD"))
    (patch,) = read_patches(diff, tmp_path / "pieces")
    assert patch.path == diff and patch.files == (CTRL, PROTOCOL)  # git diff: name order
    assert applied(repo, tmp_path / "work", [patch]) == repo.final


def test_an_mbox_builds_as_the_directory_did_without_rebuilding(repo, tmp_path, fake_make):
    repo.format_patch(tmp_path / "out")
    mbox = repo.mbox(tmp_path / "series.mbox")
    request = BuildRequest(cache=tmp_path / "cache", tree=str(repo.base), jobs=1,
                           patches_dir=tmp_path / "out")
    first = build(request)
    again = build(BuildRequest(cache=tmp_path / "cache", tree=str(repo.base), jobs=1,
                               patches_dir=mbox))
    assert first.log is not None and again.log is None  # same names and hashes: cached
    assert again.record.has_patch("mptcp-answer-correctly")


def test_checkpatch_runs_on_each_mbox_piece(tmp_path, monkeypatch, fake_make):
    monkeypatch.setenv("FAKE_CHECKPATCH_DATA", str(DATA / "checkpatch"))
    linux = tmp_path / "linux"
    (linux / "net" / "mptcp").mkdir(parents=True)
    (linux / "scripts").mkdir()
    (linux / "Makefile").write_text("# top Makefile\n")
    for name in ("protocol", "ctrl"):
        shutil.copy(DATA / "kernel" / f"base-{name}.c", linux / "net" / "mptcp" / f"{name}.c")
    shutil.copy(DATA / "kernel" / "fake-checkpatch.pl", linux / "scripts" / "checkpatch.pl")
    v1 = sorted((DATA / "kernel" / "series-v1").glob("*.patch"))
    second = v1[1].read_text().replace("\n---\n", "\nBADSTYLE\n---\n", 1)
    (tmp_path / "v1.mbox").write_text(v1[0].read_text() + "\n" + second)
    reports = patchcheck.check_series(BuildRequest(cache=tmp_path / "cache", tree=str(linux),
                                                   patches_dir=tmp_path / "v1.mbox"))
    assert [r.name for r in reports] == [p.name for p in v1]
    assert reports[0].ok and not reports[1].checkpatch_clean and reports[1].build_ok


def test_subjects_and_names_as_git_makes_them():
    subject = parse_subject("[PATCH mptcp-next v3 2/7] mptcp: fix   a\n  thing")
    assert (subject.title, subject.version, subject.number, subject.total) == \
        ("mptcp: fix a thing", "3", 2, 7)
    assert parse_subject("[mptcp] Re: [PATCH 1/2] x").reply
    assert parse_subject("[RFC] mptcp: no patch tag").title == "[RFC] mptcp: no patch tag"
    assert format_patch_name(1, "a.. b...") == "0001-a.-b.patch"
    assert format_patch_name(12, "x" * 80, "2") == "v2-0012-" + "x" * 49 + ".patch"


def one_line_error(path: Path, pieces: Path, match: str) -> str:
    with pytest.raises(KernelError, match=match) as info:
        read_patches(path, pieces)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_errors_name_the_file(repo, tmp_path):
    pieces = tmp_path / "pieces"
    one_line_error(tmp_path / "nowhere", pieces, r"nowhere: no such patch directory or file")
    (tmp_path / "empty").mkdir()
    one_line_error(tmp_path / "empty", pieces, r"empty: no patch in this directory")
    files = repo.format_patch(tmp_path / "out", "--cover-letter")
    (tmp_path / "out" / "0003-notes.patch").write_text("Some notes, no diff.\n")
    one_line_error(tmp_path / "out", pieces, r"0003-notes.patch: not a patch")
    for extra in files[1:]:
        extra.unlink()
    (tmp_path / "out" / "0003-notes.patch").unlink()
    one_line_error(tmp_path / "out", pieces, r"out: only a cover letter, no patch")


def test_two_versions_in_one_directory_are_refused(repo, tmp_path):
    repo.format_patch(tmp_path / "out")
    repo.format_patch(tmp_path / "out", "-v2")
    one_line_error(tmp_path / "out", tmp_path / "pieces", r"several versions .*\(v1, v2\)")


def test_mbox_errors_name_the_message(repo, tmp_path):
    pieces = tmp_path / "pieces"
    cover, first, second = repo.format_patch(tmp_path / "out", "--cover-letter")
    mbox = tmp_path / "bad.mbox"
    mbox.write_bytes(cover.read_bytes())
    one_line_error(mbox, pieces, r"bad.mbox: no patch in this mbox")
    mbox.write_bytes(first.read_bytes() + second.read_bytes() + first.read_bytes())
    one_line_error(mbox, pieces, r"bad.mbox message 3 \(\[PATCH 1/2\] mptcp: answer "
                                 r"correctly\): patch 1 again \(also message 1 ")
    mbox.write_bytes(cover.read_bytes() + second.read_bytes())
    one_line_error(mbox, pieces, r"bad.mbox: patch 1 of 2 missing \(found 2\)")
    mbox.write_bytes(first.read_bytes()
                     + list_mail(None, "[PATCH 2/2] oops", "I forgot the diff.\n"))
    one_line_error(mbox, pieces, r"bad.mbox message 2 \(\[PATCH 2/2\] oops\): not a patch")


def test_our_own_series_reads_the_same_from_files_and_an_mbox(tmp_path):
    ours = Path(__file__).parents[2] / "kernel_patches"
    files = sorted(ours.glob("*.patch"))
    (tmp_path / "ours").mkdir()
    for path in files:
        shutil.copy(path, tmp_path / "ours")
    directory = read_patches(tmp_path / "ours", tmp_path / "pieces")
    (tmp_path / "ours.mbox").write_bytes(b"".join(p.read_bytes() for p in files))
    mbox = read_patches(tmp_path / "ours.mbox", tmp_path / "pieces")
    assert [(p.name, p.files) for p in mbox] == [(p.name, p.files) for p in directory]
    assert "0000-cover-letter.patch" not in [p.name for p in directory]
