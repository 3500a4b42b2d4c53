"""Reproduction bundles: what the loader accepts, and the one-line errors for the rest."""

import textwrap

import pytest

from harness.repro.bundle import BundleError, load

MINIMAL = """
summary = "a bug"
[[steps]]
run = ["true"]
[expect]
any_splat = true
"""


def bundle(tmp_path, text, files=()):
    directory = tmp_path / "bug"
    directory.mkdir()
    (directory / "repro.toml").write_text(textwrap.dedent(text))
    for name in files:
        (directory / name).write_text("x\n")
    return directory


def test_a_minimal_bundle_gets_the_defaults(tmp_path):
    loaded = load(bundle(tmp_path, MINIMAL))
    assert loaded.name == "bug" and loaded.runs == 10 and loaded.run_timeout == 300
    assert loaded.kernel.variant == "debug" and loaded.kernel.patches is None
    (step,) = loaded.steps
    assert (step.name, step.kind, step.target, step.host) == ("step-1", "run", ("true",), None)
    assert loaded.topology is None and loaded.expect.describe() == "any kernel splat"


def test_a_full_bundle(tmp_path):
    text = """
    summary = "a bug"
    fix = "0123456789ab (\\"mptcp: fix it\\")"
    [kernel]
    patches = "revert"
    variant = "normal"
    config = ["CONFIG_KASAN=y"]
    [topology]
    name = "two-paths"
    [[steps]]
    name = "server"
    host = "server"
    python = "server.py"
    background = true
    [[steps]]
    name = "client"
    host = "client"
    c = "repro.c"
    args = ["10.0.1.2"]
    timeout = 30
    [[steps]]
    selftest = "mptcp_join.sh"
    args = ["-f"]
    [expect]
    splat = "WARNING: .* at net/mptcp/"
    step_failed = "step-3"
    [expect.output]
    step = "client"
    matches = "lost \\\\d+ bytes"
    [runs]
    count = 3
    timeout = 60
    """
    directory = bundle(tmp_path, text, ["server.py", "repro.c"])
    (directory / "revert").mkdir()
    loaded = load(directory)
    assert loaded.kernel.patches == (directory / "revert").resolve()
    assert [s.kind for s in loaded.steps] == ["python", "c", "selftest"]
    assert loaded.steps[0].background and loaded.steps[1].timeout == 30
    assert loaded.topology.name == "two-paths" and (loaded.runs, loaded.run_timeout) == (3, 60)
    assert "step 'step-3' failing" in loaded.expect.describe()


def test_an_inline_topology(tmp_path):
    text = MINIMAL + """
    [topology.inline]
    name = "pair"
    [topology.inline.hosts.a]
    [topology.inline.hosts.b]
    [[topology.inline.links]]
    ends = ["a:10.9.0.1/24", "b:10.9.0.2/24"]
    """
    assert load(bundle(tmp_path, text)).topology.hosts.keys() == {"a", "b"}


@pytest.mark.parametrize(("text", "files", "message"), [
    ("colour = 1\n" + MINIMAL, (), r"repro.toml: colour: unknown key"),
    (MINIMAL.replace('run = ["true"]', 'c = "repro.c"'), (),
     r"steps\[0\]\.c: no file repro.c in"),
    (MINIMAL.replace('run = ["true"]', 'run = ["true"]\nshell = "x.sh"'), ("x.sh",),
     r"steps\[0\]: give exactly one of run, shell, python, c, selftest"),
    (MINIMAL.replace('run = ["true"]', 'run = ["true"]\nhost = "client"'), (),
     r"steps\[0\]\.host: no host 'client' \(the bundle has no topology\)"),
    (MINIMAL.replace("any_splat = true", 'step_failed = "nope"'), (),
     r"expect\.step_failed: no step 'nope' \(steps: step-1\)"),
    (MINIMAL.replace("any_splat = true", 'splat = "("'), (),
     r"expect\.splat: not a regular expression"),
    (MINIMAL.replace("any_splat = true", "hang = false"), (),
     r"expect: every condition is off"),
    (MINIMAL + '[kernel]\nvariant = "fast"\n', (), r"kernel\.variant: unknown variant 'fast'"),
    (MINIMAL + '[kernel]\ncommit = "v6.12"\n', (), r"kernel\.commit: a commit needs a tree"),
    (MINIMAL + '[topology]\nname = "nowhere"\n', (), r"topology: .*no topology named"),
    (MINIMAL + "[runs]\ncount = 0\n", (), r"runs\.count: expected a positive integer"),
    (MINIMAL.replace('run = ["true"]', 'selftest = "../x.sh"'), (),
     r"steps\[0\]\.selftest: '\.\./x\.sh': name a script"),
    ("summary = 'x'\nsteps = [\n", (), r"repro.toml: TOML syntax error"),
])
def test_bad_bundles_name_the_file_and_key(tmp_path, text, files, message):
    with pytest.raises(BundleError, match=message):
        load(bundle(tmp_path, text, files))


def test_a_directory_without_repro_toml(tmp_path):
    with pytest.raises(BundleError, match=r"repro.toml: missing"):
        load(tmp_path)
