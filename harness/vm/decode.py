"""Decode a splat's stack trace with the kernel's own scripts/decode_stacktrace.sh.

Our builds are out of tree: the image is `<build>/arch/x86/boot/bzImage`, next to
`<build>/vmlinux` and `<build>/source` (the source tree, a link make creates). Function
offsets become file:line only when the kernel has debug info (the debug variant does; the
lean normal one does not, and the script then leaves the trace as it is).
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.kernel.layout import build_dir_of
from harness.run import CommandError, ToolMissing, run

DECODE_TIMEOUT = 120.0
# What the script turns into source lines: each frame's symbol+offset/size and the bytes of
# a Code: line (disassembled).
DECODED_PARTS = re.compile(r"[\w.]+\+0x[0-9a-f]+/0x[0-9a-f]+|Code: [0-9a-f<>() ]+")


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


def trace_key(text: str) -> tuple[str, ...]:
    """The parts of a splat that decoding explains, in order: two splats with the same key
    decode to the same source lines (their timestamps, PIDs and registers may differ).
    Empty when there is nothing to decode."""
    return tuple(part.rstrip() for part in DECODED_PARTS.findall(text))
