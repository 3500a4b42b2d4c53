import io

from harness.kernel.progress import Progress


class Pipe(io.StringIO):
    def isatty(self):
        return False


def test_non_tty_prints_every_tenth_against_an_estimate():
    out = Pipe()
    progress = Progress(100, out)
    for i in range(100):
        progress.feed(f"  CC      file{i}.o\n")
        progress.feed("  GEN     something\n")  # not a build step
    lines = out.getvalue().splitlines()
    assert len(lines) == 11 and lines[-1].startswith("building: 100% (100 steps")


def test_non_tty_without_estimate_counts():
    out = Pipe()
    progress = Progress(None, out)
    for i in range(1000):
        progress.feed(f"  LD      x{i}\n")
    assert out.getvalue().splitlines() == ["building: 500 steps, 0 s", "building: 1000 steps, 0 s"]
