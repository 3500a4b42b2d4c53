"""invoke patches.export: the series written from a real git branch with real git."""

from pathlib import Path

import pytest

from harness.kernel import export, patches
from harness.kernel.errors import KernelError
from harness.run import run

SETTINGS = """\
[author]
name = "Series Sender"
email = "sender@example.org"

[subject]
prefix = "PATCH 6.12"
version = 3
"""
OLD_SERIES = """\
# the first group
v2-0001-old-one.patch

# the second group
v2-0002-old-two.patch
"""
OLD_COVER = """\
From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: Series Sender <sender@example.org>
Subject: [PATCH 6.12 v2 0/2] mptcp: a title long enough to be folded by
 the mailer

Why this series exists,
in two lines.

Series Sender (2):
  old one
  old two
"""


def git(tree: Path, *argv: str, author: str = "Series Sender <sender@example.org>") -> str:
    name, email = author[:-1].split(" <")
    env_args = ["-c", f"user.name={name}", "-c", f"user.email={email}"]
    return run(["git", "-C", str(tree), *env_args, *argv]).stdout.strip()


def commit(tree: Path, name: str, text: str, subject: str, **kwargs) -> None:
    (tree / name).write_text(text)
    git(tree, "add", name)
    author = kwargs.get("author", "Series Sender <sender@example.org>")
    git(tree, "commit", "-q", "-m", f"{subject}\n\nWhy.\n\nSigned-off-by: {author}",
        **kwargs)


@pytest.fixture
def tree(tmp_path):
    """A kernel-like tree: a base commit and two commits of the series on top."""
    linux = tmp_path / "linux"
    linux.mkdir()
    git(linux, "init", "-q", "-b", "main")
    commit(linux, "protocol.c", "int a;\n", "base")
    git(linux, "tag", "base")
    commit(linux, "protocol.c", "int a;\nint b;\n", "mptcp: add b")
    commit(linux, "ctrl.c", "int c;\n", "mptcp: add c", author="Other Dev <other@example.org>")
    return linux


@pytest.fixture
def out(tmp_path):
    """A series directory holding v2 (two patches, a cover letter) and export settings."""
    directory = tmp_path / "kernel_patches"
    directory.mkdir()
    (directory / "export.toml").write_text(SETTINGS)
    (directory / "series").write_text(OLD_SERIES)
    (directory / "v2-0000-cover-letter.patch").write_text(OLD_COVER)
    for name in ("v2-0001-old-one.patch", "v2-0002-old-two.patch"):
        (directory / name).write_text("old\n")
    return directory


def test_the_series_is_written_as_the_settings_say(tree, out):
    done = export.export(tree, "base", "HEAD", out)
    assert [p.name for p in done.patches] == ["v3-0001-mptcp-add-b.patch",
                                              "v3-0002-mptcp-add-c.patch"]
    first = done.patches[0].read_text()
    assert "Subject: [PATCH 6.12 v3 1/2] mptcp: add b" in first
    assert "From: Series Sender <sender@example.org>" in first
    second = done.patches[1].read_text()
    # someone else's commit is sent by the series' identity, its author kept in the body
    assert "From: Series Sender <sender@example.org>" in second
    assert "\n\nFrom: Other Dev <other@example.org>\n\n" in second
    # and the files are patches the harness reads, in the series' order
    assert [p.files for p in map(patches.load_patch, done.patches)] == [("protocol.c",),
                                                                         ("ctrl.c",)]


def test_the_cover_letter_keeps_its_title_and_blurb_and_git_writes_the_rest(tree, out):
    done = export.export(tree, "base", "HEAD", out)
    text = done.cover_letter.read_text()
    assert done.cover_letter.name == "v3-0000-cover-letter.patch" and done.cover_filled
    assert "Subject: [PATCH 6.12 v3 0/2] mptcp: a title long enough to be folded by" in text
    assert "Why this series exists,\nin two lines.\n" in text
    assert "*** " not in text
    assert "Series Sender (1):\n  mptcp: add b" in text  # git's shortlog of the new series
    assert "Other Dev (1):\n  mptcp: add c" in text
    base_id = git(tree, "rev-parse", "base")
    assert f"base-commit: {base_id}" in text


def test_the_old_version_goes_and_the_series_file_keeps_its_comments(tree, out):
    done = export.export(tree, "base", "HEAD", out)
    assert sorted(done.removed) == ["v2-0000-cover-letter.patch", "v2-0001-old-one.patch",
                                    "v2-0002-old-two.patch"]
    assert sorted(p.name for p in out.glob("*.patch")) == [
        "v3-0000-cover-letter.patch", "v3-0001-mptcp-add-b.patch", "v3-0002-mptcp-add-c.patch"]
    assert (out / "series").read_text() == OLD_SERIES.replace(
        "v2-0001-old-one", "v3-0001-mptcp-add-b").replace("v2-0002-old-two", "v3-0002-mptcp-add-c")


def test_exporting_the_same_version_twice_replaces_it(tree, out):
    export.export(tree, "base", "HEAD", out)
    commit(tree, "ctrl.c", "int c;\nint d;\n", "mptcp: add d")
    done = export.export(tree, "base", "HEAD", out)
    assert len(done.patches) == 3 and done.removed == []
    assert (out / "series").read_text().splitlines()[-1] == "v3-0003-mptcp-add-d.patch"
    assert "Why this series exists," in done.cover_letter.read_text()


def test_a_new_series_has_git_placeholders_to_write(tree, tmp_path):
    directory = tmp_path / "new"
    directory.mkdir()
    (directory / "export.toml").write_text(SETTINGS)
    done = export.export(tree, "base", "HEAD", directory)
    assert not done.cover_filled
    assert export.BLURB_PLACEHOLDER in done.cover_letter.read_text()
    assert (directory / "series").read_text().splitlines() == [p.name for p in done.patches]


def test_nothing_to_export_is_an_error_and_changes_nothing(tree, out):
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(KernelError, match="no commit between HEAD and HEAD"):
        export.export(tree, "HEAD", "HEAD", out)
    with pytest.raises(KernelError, match="revision 'v9' does not exist"):
        export.export(tree, "v9", "HEAD", out)
    assert sorted(p.name for p in out.iterdir()) == before


def test_a_merge_in_the_range_is_refused(tree, out):
    git(tree, "checkout", "-q", "-b", "side", "base")
    commit(tree, "side.c", "int s;\n", "side")
    git(tree, "checkout", "-q", "main")
    git(tree, "merge", "-q", "--no-edit", "side")
    with pytest.raises(KernelError, match="merge commits"):
        export.export(tree, "base", "HEAD", out)


@pytest.mark.parametrize(("text", "message"), [
    ("", "author: required key is missing"),
    (SETTINGS.replace('version = 3', 'version = "3"'), "subject.version: expected an integer"),
    (SETTINGS.replace('version = 3', 'version = 0'), "subject.version: expected 1 or more"),
    (SETTINGS.replace('sender@example.org', 'sender'), "author.email: not an e-mail address"),
    (SETTINGS.replace('name = "Series Sender"', 'name = ""'), "author.name: expected one"),
    (SETTINGS + "colour = 1\n", "subject.colour: unknown key"),
    ("[author", "not valid TOML"),
])
def test_bad_settings_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "export.toml"
    path.write_text(text)
    with pytest.raises(KernelError, match=message) as raised:
        export.load_settings(path)
    assert str(path) in str(raised.value)


def test_missing_settings_name_the_file(tree, tmp_path):
    with pytest.raises(KernelError, match=r"export\.toml: no export settings"):
        export.export(tree, "base", "HEAD", tmp_path)


def test_the_shipped_settings_load():
    shipped = Path(__file__).parents[2] / "kernel_patches" / "export.toml"
    settings = export.load_settings(shipped)
    assert settings.subject_prefix == "PATCH 6.12" and settings.version >= 2


GROUPED = ["# one", "v2-0001-a.patch", "", "# two", "v2-0002-b.patch", "v2-0003-c.patch"]


def test_a_patch_keeps_the_line_of_its_subject_when_one_is_inserted_before_it():
    names = ["v3-0001-a.patch", "v3-0002-new.patch", "v3-0003-b.patch", "v3-0004-c.patch"]
    assert export.series_lines(GROUPED, names) == [
        "# one", "v3-0001-a.patch", "v3-0002-new.patch", "", "# two", "v3-0003-b.patch",
        "v3-0004-c.patch"]


def test_a_dropped_patch_loses_its_line_and_a_new_first_one_comes_first():
    names = ["v3-0001-zero.patch", "v3-0002-a.patch", "v3-0003-c.patch"]
    assert export.series_lines(GROUPED, names) == [
        "# one", "v3-0001-zero.patch", "v3-0002-a.patch", "", "# two", "v3-0003-c.patch"]


def test_a_reordered_series_is_listed_in_its_new_order():
    names = ["v3-0001-c.patch", "v3-0002-a.patch", "v3-0003-b.patch"]
    lines = export.series_lines(GROUPED, names)
    assert [line for line in lines if line.endswith(".patch")] == names
    assert "# two" in lines
