"""How Vm.run quotes an argv for the guest's shell (the one place that does)."""

import shlex

import pytest

from harness.vm.machine import guest_command


def test_an_argv_is_quoted_word_by_word():
    argv = ["printf", "%s\n", "a b", "$HOME", "it's"]
    assert shlex.split(guest_command(argv)) == argv


def test_cwd_and_env_wrap_the_argv():
    command = guest_command(["ls", "-l"], cwd="/a dir", env={"K": "v w"})
    assert command == "cd '/a dir' && exec env 'K=v w' ls -l"


@pytest.mark.parametrize("bad", ["ls -l", []])
def test_a_shell_string_or_nothing_is_refused(bad):
    with pytest.raises(TypeError, match=r"\['sh', '-c', text\]"):
        guest_command(bad)
