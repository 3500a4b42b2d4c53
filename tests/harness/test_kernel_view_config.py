"""Whether a build can be read with drgn is decided from its .config."""

from harness.kernel.record import BuildRecord
from harness.mptcp.kernel_view import config_lacks
from harness.pytest_plugin import debug_info_verdict


def build_with(tmp_path, *lines: str) -> str:
    (tmp_path / ".config").write_text("\n".join(lines) + "\n")
    return str(tmp_path / "vmlinux")


def test_a_debug_build_can_be_read(tmp_path):
    vmlinux = build_with(tmp_path, "CONFIG_DEBUG_INFO=y", "CONFIG_PROC_KCORE=y")
    assert config_lacks(vmlinux) == []
    assert debug_info_verdict(BuildRecord("src", [], "fp", "bzImage", vmlinux)) == ("run", "")


def test_a_normal_build_is_an_expected_skip_that_names_the_variant(tmp_path):
    vmlinux = build_with(tmp_path, "CONFIG_DEBUG_INFO_NONE=y", "# CONFIG_PROC_KCORE is not set")
    assert config_lacks(vmlinux) == ["CONFIG_DEBUG_INFO", "CONFIG_PROC_KCORE"]
    verdict, why = debug_info_verdict(BuildRecord("src", [], "fp", "bzImage", vmlinux))
    assert verdict == "skip" and "invoke build --variant debug" in why


def test_no_build_record_fails():
    assert debug_info_verdict(None)[0] == "fail"
