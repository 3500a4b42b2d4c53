"""What invoke gdb and the panic dump decide on the host, without a VM: which builds can be
debugged, and how a dump is kept with the name of its kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.vm import gdb, vmcore


def build_with(tmp_path: Path, config: str, helpers: bool = True) -> Path:
    (tmp_path / ".config").write_text(config)
    if helpers:
        (tmp_path / gdb.HELPERS).write_text("")
    vmlinux = tmp_path / "vmlinux"
    vmlinux.write_text("")
    return vmlinux


def test_gdb_refuses_a_kernel_without_debug_info_and_names_the_variant(tmp_path):
    vmlinux = build_with(tmp_path, "# CONFIG_DEBUG_INFO is not set\nCONFIG_GDB_SCRIPTS=y\n")
    with pytest.raises(gdb.GdbError, match="without CONFIG_DEBUG_INFO.*--variant debug"):
        gdb.check_build(vmlinux)


def test_gdb_names_the_make_target_when_the_helpers_were_not_built(tmp_path):
    vmlinux = build_with(tmp_path, "CONFIG_DEBUG_INFO=y\nCONFIG_GDB_SCRIPTS=y\n", helpers=False)
    with pytest.raises(gdb.GdbError, match="scripts_gdb"):
        gdb.check_build(vmlinux)


def test_a_debuggable_build_gives_its_helpers(tmp_path):
    vmlinux = build_with(tmp_path, "CONFIG_DEBUG_INFO=y\nCONFIG_GDB_SCRIPTS=y\n")
    assert gdb.check_build(vmlinux) == tmp_path / gdb.HELPERS


def test_a_kept_dump_names_its_kernel_and_leaves_the_vm_directory(tmp_path):
    run_dir = tmp_path / "vm"
    run_dir.mkdir()
    (run_dir / vmcore.DUMP).write_bytes(b"core")
    vmcore.DumpRecord("elf", 4, 0.1, 1.0).save(run_dir / vmcore.DUMP)
    kept = vmcore.keep(run_dir, tmp_path / "vm-last-vmcore", "/b/bzImage", "/b/vmlinux")
    assert kept.read_bytes() == b"core" and not (run_dir / vmcore.DUMP).exists()
    assert vmcore.DumpRecord.load(kept).vmlinux == "/b/vmlinux"
    moved = vmcore.move(kept, tmp_path / "run-01" / vmcore.DUMP)
    assert vmcore.DumpRecord.load(moved).image == "/b/bzImage"


def test_no_dump_is_kept_when_the_kernel_could_not_report_its_panic(tmp_path):
    assert vmcore.keep(tmp_path, tmp_path / "kept", "", "") is None
