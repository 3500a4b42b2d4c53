"""A bundle written from a syzkaller C reproducer and its report's config."""

import pytest

from harness.repro.bundle import BundleError, load
from harness.repro.syzbot import relevant_config, write_bundle

REPRO_C = "int main(void) { /* uses CONFIG_NET_SCH_NETEM */ return 0; }\n"
CONFIG = """\
# Automatically generated file; DO NOT EDIT.
CONFIG_MPTCP=y
CONFIG_MPTCP_IPV6=y
CONFIG_INET_MPTCP_DIAG=m
# CONFIG_MPTCP_KUNIT_TEST is not set
CONFIG_NET_SCH_NETEM=m
CONFIG_BTRFS_FS=y
"""


def test_only_mptcp_items_and_those_the_reproducer_names_are_taken():
    assert relevant_config(CONFIG, REPRO_C, ".config") == [
        "CONFIG_MPTCP=y", "CONFIG_MPTCP_IPV6=y", "CONFIG_INET_MPTCP_DIAG=y",
        "CONFIG_NET_SCH_NETEM=y"]


def test_the_written_bundle_loads_and_runs_the_reproducer_as_a_c_step(tmp_path):
    (tmp_path / "repro.c").write_text(REPRO_C)
    (tmp_path / "config").write_text(CONFIG)
    write_bundle(tmp_path / "bug", tmp_path / "repro.c", tmp_path / "config")
    bundle = load(tmp_path / "bug")
    (step,) = bundle.steps
    assert step.kind == "c" and step.target.endswith("bug/repro.c") and step.timeout == 60
    assert bundle.expect.any_splat and bundle.kernel.variant == "debug"
    assert "CONFIG_NET_SCH_NETEM=y" in bundle.kernel.config
    assert (tmp_path / "bug" / "repro.c").read_text() == REPRO_C


def test_an_existing_bundle_is_not_overwritten(tmp_path):
    (tmp_path / "repro.c").write_text(REPRO_C)
    write_bundle(tmp_path / "bug", tmp_path / "repro.c")
    with pytest.raises(BundleError, match="already exists"):
        write_bundle(tmp_path / "bug", tmp_path / "repro.c")
