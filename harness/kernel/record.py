"""The build record: what a build was made from, so an unchanged build returns at once."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

RECORD_FILE = "mlab-build.json"


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
