"""The build record: what a build was made from, so an unchanged build returns at once."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.kernel.layout import RECORD_FILE, record_path_of

PATCH_FILE = re.compile(r"^(?:v\d+-)?\d{4}-(?P<slug>.+?)(?:\.patch)?$")


# `git format-patch` cuts a long subject so that the file name fits in 64 characters,
# more with a "v2-" prefix: a cut slug keeps at least this many characters.
SHORTEST_CUT = 40


def patch_slug(name: str) -> str:
    """A patch's file name without its number and suffix: `git format-patch` names
    '0005-mptcp-sched-add-the-roundrobin-scheduler.patch' after its subject, and the
    number changes when a series is reordered or trimmed, the subject does not."""
    match = PATCH_FILE.match(name)
    return match["slug"] if match else name


def is_cut_of(file_slug: str, subject_slug: str) -> bool:
    """Whether a patch file's slug names this subject: equal to it, or the subject cut to
    fit a file name (a series exported with -v2 has shorter names than without)."""
    return file_slug == subject_slug or (len(file_slug) >= SHORTEST_CUT
                                         and subject_slug.startswith(file_slug))


@dataclass(frozen=True)
class BuildRecord:
    source_id: str
    patches: list[list[str]]  # [name, sha256] in series order
    config: str  # fingerprint of the requested options
    image: str  # path of bzImage
    vmlinux: str

    def save(self, build_dir: Path) -> None:
        (build_dir / RECORD_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, build_dir: Path) -> BuildRecord | None:
        path = build_dir / RECORD_FILE
        if not path.exists():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError):
            return None  # an unreadable record only costs a make run

    def up_to_date(self, wanted: BuildRecord) -> bool:
        return self == wanted and Path(self.image).exists()

    def has_patch(self, slug: str) -> bool:
        return any(is_cut_of(patch_slug(name), slug) for name, _sha in self.patches)

    @classmethod
    def of_image(cls, image: Path) -> BuildRecord | None:
        """The record of the build that made `image`, if it still describes that image."""
        path = record_path_of(image)
        record = cls.load(path.parent) if path is not None else None
        same = record is not None and Path(record.image).resolve() == image.resolve()
        return record if same else None
