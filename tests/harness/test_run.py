import pytest

from harness.run import CommandError, ToolMissing, run


def test_success_returns_output():
    result = run(["sh", "-c", "echo out; echo err >&2"])
    assert (result.returncode, result.stdout, result.stderr) == (0, "out\n", "err\n")


def test_failure_shows_command_exit_code_and_both_streams():
    with pytest.raises(CommandError) as info:
        run(["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"])
    text = str(info.value)
    assert "exit code 3" in text and "sh -c" in text
    assert "to-stdout" in text and "to-stderr" in text
    assert info.value.returncode == 3


def test_check_false_returns_the_failure():
    assert run(["false"], check=False).returncode == 1


def test_timeout_kills_and_says_so():
    with pytest.raises(CommandError, match="timed out after 0.2 s"):
        run(["sleep", "5"], timeout=0.2)


def test_missing_tool_is_named():
    with pytest.raises(ToolMissing, match="no-such-tool-xyz"):
        run(["no-such-tool-xyz"])


def test_shell_strings_are_refused():
    with pytest.raises(TypeError):
        run("echo hi")


def test_namespace_wraps_with_ip_netns_exec():
    from harness.run import netns_argv

    assert netns_argv(["ss", "-M"], "mlab-x") == ["ip", "netns", "exec", "mlab-x", "ss", "-M"]
    assert netns_argv(["ss", 1], None) == ["ss", "1"]
