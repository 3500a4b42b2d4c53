"""What invoke gdb and the panic dump decide on the host, without a VM: which builds can be
debugged, and how a dump is kept with the name of its kernel."""

from __future__ import annotations

import subprocess
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


def elf_with_functions(tmp_path: Path, *names: str) -> Path:
    """A real ELF with debug info (gcc -g) defining `names`, and its System.map, as a
    kernel build has them beside vmlinux."""
    source = tmp_path / "k.c"
    source.write_text("".join(f"int {n}(int x) {{ return x + 1; }}\n" for n in names)
                      + "int main(void) { return 0; }\n")
    elf = tmp_path / "vmlinux"
    subprocess.run(["gcc", "-g", "-O0", "-o", str(elf), str(source)], check=True)
    symbols = subprocess.run(["nm", str(elf)], check=True, capture_output=True, text=True)
    (tmp_path / gdb.SYSTEM_MAP).write_text(symbols.stdout)
    return elf


def test_a_misspelt_breakpoint_is_refused_before_attaching_with_near_names(tmp_path):
    elf = elf_with_functions(tmp_path, "mptcp_connect", "mptcp_disconnect")
    with pytest.raises(gdb.GdbError, match=r"mptcp_conect \(did you mean mptcp_connect"):
        gdb.check_breakpoints(elf, ["mptcp_connect", "mptcp_conect"])


def test_a_breakpoint_on_a_missing_source_file_is_refused(tmp_path):
    elf = elf_with_functions(tmp_path, "mptcp_connect")
    with pytest.raises(gdb.GdbError, match="no_such_file.c:12"):
        gdb.check_breakpoints(elf, ["no_such_file.c:12"])


def test_breakpoints_gdb_can_place_pass(tmp_path):
    elf = elf_with_functions(tmp_path, "mptcp_connect")
    gdb.check_breakpoints(elf, ["mptcp_connect", "k.c:1"])


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
