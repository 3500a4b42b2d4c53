"""Decode a splat's stack trace with the kernel's own scripts/decode_stacktrace.sh.

Our builds are out of tree: the image is `<build>/arch/x86/boot/bzImage`, next to
`<build>/vmlinux` and `<build>/source` (the source tree, a link make creates). Function
offsets become file:line only when the kernel has debug info (the debug variant does; the
lean normal one does not, and the script then leaves the trace as it is).
"""

from __future__ import annotations

from pathlib import Path

from harness.kernel.layout import build_dir_of
from harness.run import CommandError, ToolMissing, run

DECODE_TIMEOUT = 120.0


def decode(text: str, image: Path) -> str:
    """`text` with its trace decoded, or `text` unchanged with a note saying why not."""
    build_dir = build_dir_of(image)
    if build_dir is None:
        return text + f"\n(not decoded: {image} is not in a kernel build directory)"
    vmlinux = build_dir / "vmlinux"
    script = build_dir / "source" / "scripts" / "decode_stacktrace.sh"
    for needed in (vmlinux, script):
        if not needed.exists():
            return text + f"\n(not decoded: no {needed})"
    try:
        result = run([str(script), str(vmlinux), str(script.parents[1].resolve())],
                     input=text + "\n", timeout=DECODE_TIMEOUT)
    except (CommandError, ToolMissing) as err:
        return text + f"\n(not decoded: {err})"
    return result.stdout.rstrip("\n")
