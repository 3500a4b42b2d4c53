"""Where a kernel build puts what the rest of the harness needs: one place for the layout.

Our builds are out of tree: `<build>/arch/x86/boot/bzImage`, `<build>/vmlinux`, the build
record `<build>/mlab-build.json`, and `<build>/source` (a link to the source tree, which
make creates). The VM and the runs find these from the image they boot.
"""

from __future__ import annotations

from pathlib import Path

IMAGE = Path("arch/x86/boot/bzImage")  # relative to the build directory
VMLINUX = "vmlinux"
RECORD_FILE = "mlab-build.json"


def build_dir_of(image: Path) -> Path | None:
    """The O= build directory that produced `image`, or None for an image from elsewhere."""
    if image.parts[-len(IMAGE.parts):] != IMAGE.parts:
        return None
    return image.parents[len(IMAGE.parts) - 1]


def record_path_of(image: Path) -> Path | None:
    """The build record next to `image` (which may not exist), or None if `image` is not
    in a build directory."""
    build_dir = build_dir_of(image)
    return None if build_dir is None else build_dir / RECORD_FILE


UTS_VERSION_FILE = Path("include/generated/utsversion.h")


def uts_version(image: Path) -> str | None:
    """What `uname -v` prints on the kernel of `image` ("#1 SMP <link time>"): it changes
    with every link, so it tells whether a VM runs this very build."""
    build_dir = build_dir_of(image)
    header = build_dir / UTS_VERSION_FILE if build_dir else None
    if header is None or not header.exists():
        return None
    for line in header.read_text().splitlines():
        if line.startswith("#define UTS_VERSION "):
            return line.split(" ", 2)[2].strip().strip('"')
    return None


def is_sanitized(image: Path) -> bool:
    """Whether the build of `image` has KASAN (a debug kernel: slow to boot and to run)."""
    build_dir = build_dir_of(image)
    config = build_dir / ".config" if build_dir else None
    return config is not None and config.exists() and \
        "CONFIG_KASAN=y" in config.read_text().splitlines()
