"""Patch input as developers have it: a quilt series, `git format-patch` output, an mbox.

`read_patches(path, pieces_dir)` is the one entry point:

- a directory with a `series` file: the patches it lists, in that order;
- a directory without one (`git format-patch -o DIR`): its *.patch and *.diff files in
  name order, without the cover letter (`0000-cover-letter.patch`, or a mail numbered 0/N);
  any other file without a diff is an error;
- a file of mails (`git format-patch --stdout`, a thread saved from a mailing list): one
  patch per message, in the order of their `[PATCH vN m/N]` numbers, or in file order when
  they have none. Each is written to a file under `pieces_dir`, named as `git format-patch`
  names it, so that record.patch_slug() gives the same slug as for the file of that patch.
  A 7bit/8bit mail is written byte for byte: its hash is that of the format-patch file, and
  a build made from either stays cached. Quoted-printable/base64 bodies are decoded;
- any other file: one plain diff.

In an mbox the cover letter (0/N) and replies ("Re: ...") are skipped, also when they carry
a diff (a cover letter's interdiff, a reviewer's quote or suggested fixup): neither is part
of the series. Any other mail without a diff is an error naming it.
"""

from __future__ import annotations

import email
import email.parser
import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path

from harness.kernel.errors import KernelError
from harness.kernel.patches import Patch, files_of, load_patch, read_series

# mbox separators: `From <sha> Mon Sep 17 00:00:00 2001` (git), `From user@host <date>` (lists)
SEPARATOR = re.compile(rb"^From \S+ .*\b\d{1,2}:\d\d(?::\d\d)?\b.*\b\d{4}\s*$")
MBOXRD = b"From mboxrd@z "  # lore.kernel.org: body lines `From ` are stored as `>From `
MBOXRD_ESCAPE = re.compile(rb"^>(>*From )", re.MULTILINE)
LEADING_TAG = re.compile(r"^\[([^\]]*)\]\s*")
REPLY = re.compile(r"^(?:\[[^\]]*\]\s*)*re\s*:", re.IGNORECASE)
NUMBER = re.compile(r"\b(\d+)/(\d+)\b")
VERSION = re.compile(r"\bv(\d+)\b", re.IGNORECASE)
PATCH_FILE = re.compile(r"^(?:v(?P<version>\d+)-)?(?P<number>\d{4})-")
COVER_LETTER = re.compile(r"^(?:v\d+-)?0000-cover-letter\.patch$")
PATCH_SUFFIXES = (".patch", ".diff")
NAME_MAX = 64 - len(".patch") - 1  # git format-patch's default --filename-max-length


@dataclass(frozen=True)
class Subject:
    """A mail subject: `[PATCH v2 3/5] mptcp: fix x` -> title 'mptcp: fix x', 2, 3, 5."""
    text: str
    title: str
    version: str | None = None
    number: int | None = None
    total: int | None = None

    @property
    def reply(self) -> bool:
        return REPLY.match(self.text) is not None


def parse_subject(subject: str) -> Subject:
    text = " ".join(subject.split())
    rest = text
    while match := LEADING_TAG.match(rest):
        rest = rest[match.end():]
        tag = match[1]
        if re.search(r"\bPATCH\b", tag, re.IGNORECASE):
            number, version = NUMBER.search(tag), VERSION.search(tag)
            return Subject(text, rest, version and version[1],
                           number and int(number[1]), number and int(number[2]))
    return Subject(text, text)  # no [PATCH ...] tag: the subject is the commit's own


def slug(title: str) -> str:
    """The file name part `git format-patch` makes of a commit subject: runs of anything
    but ASCII letters, digits, '.' and '_' become one '-', '..' becomes '.', and trailing
    '.' and '-' go."""
    words = re.findall(r"[A-Za-z0-9._]+", title)
    return "-".join(re.sub(r"\.{2,}", ".", word) for word in words).rstrip(".-")


def format_patch_name(number: int, title: str, version: str | None = None) -> str:
    """The name `git format-patch [-vN]` gives patch `number` of a series."""
    prefix = f"v{version}-" if version else ""
    return f"{prefix}{number:04d}-{slug(title)}"[:NAME_MAX] + ".patch"


def read_patches(path: Path, pieces_dir: Path) -> list[Patch]:
    """The patch series at `path` (see the module's text); mbox pieces go under pieces_dir."""
    if path.is_dir():
        return read_series(path) if (path / "series").exists() else _format_patch_dir(path)
    if not path.is_file():
        raise KernelError(f"{path}: no such patch directory or file")
    data = path.read_bytes()
    first = next((line for line in data.splitlines() if line.strip()), b"")
    if not SEPARATOR.match(first):
        return [load_patch(path)]  # a plain diff, or a file that is not a patch at all
    return _read_mbox(path, data, pieces_dir)


# --- a directory of git format-patch output


def _format_patch_dir(directory: Path) -> list[Patch]:
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in PATCH_SUFFIXES)
    if not files:
        raise KernelError(f"{directory}: no patch in this directory (no series file, "
                          f"no *.patch or *.diff file)")
    kept = [p for p in files if not _is_cover_letter(p)]
    if not kept:
        raise KernelError(f"{directory}: only a cover letter, no patch")
    _check_one_series(directory, kept)
    return [load_patch(p) for p in kept]


def _is_cover_letter(path: Path) -> bool:
    if COVER_LETTER.match(path.name):
        return True
    data = path.read_bytes()
    if SEPARATOR.match(data.split(b"\n", 1)[0]):
        data = data.split(b"\n", 1)[-1]
    headers = email.parser.BytesHeaderParser(policy=policy.default).parsebytes(data)
    return parse_subject(str(headers.get("Subject", ""))).number == 0


def _check_one_series(directory: Path, files: list[Path]) -> None:
    """Refuse two format-patch runs in one directory: they would be applied one after the other."""
    named = [(p.name, m) for p in files if (m := PATCH_FILE.match(p.name))]
    versions = sorted({m["version"] or "1" for _name, m in named})
    if len(versions) > 1:
        raise KernelError(f"{directory}: patches of several versions of a series "
                          f"(v{', v'.join(versions)}): keep one, or list them in a series file")
    numbers = Counter(m["number"] for _name, m in named)
    twice = [name for name, m in named if numbers[m["number"]] > 1]
    if twice:
        raise KernelError(f"{directory}: {twice[0]} and {twice[1]} have the same number: "
                          f"keep one series, or list the patches in a series file")


# --- an mbox


@dataclass(frozen=True)
class Message:
    where: str  # "<mbox> message 3 ([PATCH 2/2] mptcp: ...)", for errors
    subject: Subject
    piece: bytes  # what is written to the piece file
    has_diff: bool


def _read_mbox(mbox: Path, data: bytes, pieces_dir: Path) -> list[Patch]:
    messages = [_message(mbox, index, raw) for index, raw in enumerate(_split(data), start=1)]
    wanted = []
    for message in messages:
        if message.subject.reply or message.subject.number == 0:
            continue  # a reply or the cover letter, with or without a diff
        if not message.has_diff:
            raise KernelError(f"{message.where}: not a patch (no diff), not a cover letter "
                              f"(0/N) and not a reply (Re:)")
        wanted.append(message)
    if not wanted:
        raise KernelError(f"{mbox}: no patch in this mbox (none of its {len(messages)} "
                          f"messages has a diff outside a cover letter or reply)")
    ordered = _ordered(mbox, wanted)
    target = pieces_dir / f"{mbox.name}-{hashlib.sha256(data).hexdigest()[:16]}"
    target.mkdir(parents=True, exist_ok=True)
    patches = []
    for position, message in enumerate(ordered, start=1):
        subject = message.subject
        path = target / format_patch_name(subject.number or position, subject.title,
                                          subject.version)
        _write(path, message.piece)
        patches.append(load_patch(path, message.where))
    return patches


def _split(data: bytes) -> list[bytes]:
    """The messages of an mbox, each from its `From ` line to the next one's. The blank line
    before a `From ` line belongs to the separator (format-patch --stdout writes one after
    each patch): without it a message is byte for byte the file format-patch -o writes."""
    lines = data.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if SEPARATOR.match(line)]
    ends = [end - 1 if not lines[end - 1].strip() else end for end in starts[1:]]
    ends.append(len(lines))
    return [b"".join(lines[start:end]) for start, end in zip(starts, ends, strict=True)]


def _message(mbox: Path, index: int, raw: bytes) -> Message:
    separator, _, body = raw.partition(b"\n")
    if separator.startswith(MBOXRD):
        body = MBOXRD_ESCAPE.sub(rb"\1", body)
    mail = email.message_from_bytes(body, policy=policy.default)
    subject = parse_subject(str(mail.get("Subject", "")))
    where = f"{mbox} message {index} ({subject.text or 'no subject'})"
    if mail.is_multipart():
        raise KernelError(f"{where}: a multipart mail (attachments) is not supported: "
                          f"save the patch in it to a file")
    encoding = str(mail.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding in ("quoted-printable", "base64"):
        piece = _decoded(mail, subject).encode()
    else:
        piece = separator + b"\n" + body
    return Message(where, subject, piece, bool(files_of(piece.decode(errors="replace"))))


def _decoded(mail: EmailMessage, subject: Subject) -> str:
    """The mail as git format-patch would have written it: a few headers, the plain body."""
    content = mail.get_content()
    if isinstance(content, bytes):
        content = content.decode(errors="replace")
    headers = [f"{name}: {' '.join(str(mail[name]).split())}"
               for name in ("From", "Date") if mail[name] is not None]
    return "\n".join([*headers, f"Subject: {subject.text}", "", content])


def _ordered(mbox: Path, messages: list[Message]) -> list[Message]:
    """By their m/N numbers, which must be 1..N once each; file order when unnumbered."""
    numbered = [m for m in messages if m.subject.number is not None]
    if not numbered:
        return messages
    if len(numbered) < len(messages):
        odd = next(m for m in messages if m.subject.number is None)
        raise KernelError(f"{odd.where}: has no m/N number while other patches have one")
    versions = sorted({m.subject.version or "1" for m in messages})
    if len(versions) > 1:
        raise KernelError(f"{mbox}: patches of several versions of a series "
                          f"(v{', v'.join(versions)}): keep one")
    by_number: dict[int, Message] = {}
    for message in messages:
        number = message.subject.number
        if number in by_number:
            raise KernelError(f"{message.where}: patch {number} again (also "
                              f"{by_number[number].where.removeprefix(f'{mbox} ')})")
        by_number[number] = message
    total = max(m.subject.total or 0 for m in messages)
    missing = [str(n) for n in range(1, total + 1) if n not in by_number]
    if missing:
        raise KernelError(f"{mbox}: patch {', '.join(missing)} of {total} missing "
                          f"(found {', '.join(map(str, sorted(by_number)))})")
    if max(by_number) > total:
        raise KernelError(f"{mbox}: patch {max(by_number)} of a series of {total}")
    return [by_number[n] for n in sorted(by_number)]


def _write(path: Path, data: bytes) -> None:
    if path.exists() and path.read_bytes() == data:
        return  # same content: keep the file as it is
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
