"""Configuration fragments, variants and the check for options olddefconfig dropped."""

import pytest

from harness.kernel import kconfig
from harness.kernel.build import BuildRequest, first_errors, plan
from harness.kernel.errors import KernelError
from harness.kernel.record import BuildRecord
from harness.kernel.source import debian


def test_normal_variant_asks_for_mptcp_kunit_lkdtm_and_netem():
    wanted = kconfig.requested("normal")
    for option in ("CONFIG_MPTCP", "CONFIG_MPTCP_IPV6", "CONFIG_INET_MPTCP_DIAG",
                   "CONFIG_MPTCP_KUNIT_TEST", "CONFIG_LKDTM", "CONFIG_NET_SCH_NETEM",
                   "CONFIG_NET_SCH_TBF", "CONFIG_VETH", "CONFIG_NF_TABLES"):
        assert wanted[option] == "y", option
    assert wanted["CONFIG_MODULES"] == "n" and "CONFIG_KASAN" not in wanted


def kernel_tree(tmp_path, debug_config: str):
    tree = tmp_path / "linux"
    (tree / "kernel" / "configs").mkdir(parents=True)
    (tree / "kernel" / "configs" / "debug.config").write_text(debug_config)
    return tree


def test_debug_variant_has_the_checkers_even_from_a_tree_without_a_debug_config(tmp_path):
    for tree in (None, tmp_path):
        wanted = kconfig.requested("debug", tree=tree)
        for option in ("CONFIG_KASAN", "CONFIG_PROVE_LOCKING", "CONFIG_DEBUG_NET",
                       "CONFIG_DEBUG_KMEMLEAK", "CONFIG_NET_NS_REFCNT_TRACKER",
                       "CONFIG_PANIC_ON_OOPS"):
            assert wanted[option] == "y", option
            assert option not in wanted.from_tree


def test_the_trees_fragments_come_first_and_ours_on_top(tmp_path):
    tree = kernel_tree(tmp_path, "CONFIG_UBSAN=y\nCONFIG_MODULES=y\nCONFIG_NF_TABLES=m\n"
                                 "# CONFIG_BOOTPARAM_HUNG_TASK_PANIC is not set\n"
                                 "CONFIG_DEBUG_KMEMLEAK_AUTO_SCAN=y\nCONFIG_GONE_SINCE=y\n")
    wanted = kconfig.requested("debug", tree=tree)
    assert wanted["CONFIG_UBSAN"] == "y" and wanted["CONFIG_GONE_SINCE"] == "y"
    assert wanted["CONFIG_MODULES"] == "n"  # ours: no modules
    assert wanted["CONFIG_BOOTPARAM_HUNG_TASK_PANIC"] == "y"  # ours: a hang panics
    assert wanted["CONFIG_DEBUG_KMEMLEAK_AUTO_SCAN"] == "n"  # ours: the settle step scans
    assert wanted.from_tree == {"CONFIG_UBSAN", "CONFIG_GONE_SINCE"}
    assert "CONFIG_UBSAN" not in kconfig.requested("normal", tree=tree).values


def test_a_trees_module_is_built_in(tmp_path):
    tree = tmp_path / "linux"
    (tree / "tools/testing/selftests/net/mptcp").mkdir(parents=True)
    (tree / "tools/testing/selftests/net/mptcp/config").write_text(
        "CONFIG_NET_SCH_FQ=m\nCONFIG_INET_MPTCP_DIAG=m\n")
    for variant in ("normal", "debug"):  # both run the selftests
        wanted = kconfig.requested(variant, tree=tree)
        assert wanted["CONFIG_NET_SCH_FQ"] == "y" and "CONFIG_NET_SCH_FQ" in wanted.from_tree
        assert wanted["CONFIG_INET_MPTCP_DIAG"] == "y"
        assert "CONFIG_INET_MPTCP_DIAG" not in wanted.from_tree  # ours too: must be taken


def test_what_the_tree_asks_for_and_this_kernel_lacks_is_listed_not_fatal(tmp_path, fake_make,
                                                                           monkeypatch):
    tree = kernel_tree(tmp_path, "CONFIG_UBSAN=y\nCONFIG_DEBUG_VM_VMACACHE=y\n")
    monkeypatch.setenv("FAKE_MAKE_DROP", "CONFIG_DEBUG_VM_VMACACHE")
    build_dir = tmp_path / "build"
    not_taken = kconfig.configure(tree, build_dir, kconfig.requested("debug", tree=tree))
    assert not_taken == ["CONFIG_DEBUG_VM_VMACACHE=y (got not set)"]
    assert kconfig.tree_options_not_taken(build_dir) == not_taken
    monkeypatch.setenv("FAKE_MAKE_DROP", "CONFIG_DEBUG_VM_VMACACHE,CONFIG_KASAN")
    with pytest.raises(kconfig.ConfigDropped, match=r"1 requested .*CONFIG_KASAN=y \(got not"):
        kconfig.configure(tree, build_dir, kconfig.requested("debug", tree=tree))


def test_unknown_variant_is_named_with_the_known_ones():
    with pytest.raises(KernelError, match="unknown --variant 'fast': use one of normal, debug"):
        kconfig.requested("fast")


def test_config_items_override_fragments():
    wanted = kconfig.requested("normal", ["CONFIG_MPTCP_IPV6=n", "NR_CPUS=4"])
    assert wanted["CONFIG_MPTCP_IPV6"] == "n" and wanted["CONFIG_NR_CPUS"] == "4"
    with pytest.raises(KernelError, match="--config-item:1: not a CONFIG_X=value line"):
        kconfig.requested("normal", ["CONFIG_MPTCP"])


def test_dropped_options_are_listed_by_name():
    wanted = {"CONFIG_LKDTM": "y", "CONFIG_MPTCP": "y", "CONFIG_USB_SUPPORT": "n"}
    actual = {"CONFIG_MPTCP": "y"}
    assert kconfig.dropped(wanted, actual) == ["CONFIG_LKDTM=y (got not set)"]


def test_fragment_syntax_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(KernelError, match=r"x.config:2: not a CONFIG_X=value line"):
        kconfig.parse("CONFIG_A=y\nCONFIG_B\n", str(tmp_path / "x.config"))


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(KernelError, match="no kernel source: .*missing.*linux-source-6.12"):
        debian(tmp_path, tarball=tmp_path / "none.tar.xz")


def test_tree_that_is_not_a_kernel_is_refused(tmp_path):
    with pytest.raises(KernelError, match="not a kernel source tree"):
        plan(BuildRequest(cache=tmp_path, tree=str(tmp_path)))


def test_record_is_up_to_date_only_with_the_same_inputs_and_an_image(tmp_path):
    image = tmp_path / "bzImage"
    record = BuildRecord("src 1", [["0001.patch", "abc"]], "cfg", str(image), "vmlinux")
    assert not record.up_to_date(record)  # no image yet
    image.write_bytes(b"kernel")
    record.save(tmp_path)
    loaded = BuildRecord.load(tmp_path)
    assert loaded.up_to_date(record)
    assert not loaded.up_to_date(BuildRecord("src 1", [["0001.patch", "abd"]], "cfg",
                                             str(image), "vmlinux"))


def test_first_errors_come_from_the_top_of_the_log(tmp_path):
    log = tmp_path / "build.log"
    log.write_text("  CC      a.o\n"
                   "net/mptcp/protocol.c: In function 'x':\n"
                   "net/mptcp/protocol.c:10:2: error: 'y' undeclared\n"
                   + "  CC      b.o\n" * 2000
                   + "make: *** [Makefile:1] Error 2\n")
    errors = first_errors(log)
    assert errors[0] == "net/mptcp/protocol.c: In function 'x':"
    assert errors[1].endswith("error: 'y' undeclared")


def test_a_user_tree_is_identified_by_commit_and_uncommitted_changes(tmp_path):
    from harness.kernel.source import user_tree
    from harness.run import run

    tree = tmp_path / "linux"
    (tree / "net" / "mptcp").mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 6\n")
    (tree / "net" / "mptcp" / "ctrl.c").write_text("int x;\n")
    git = ["git", "-C", str(tree), "-c", "user.email=lab@example.invalid", "-c", "user.name=lab"]
    run([*git, "init", "-q"])
    run([*git, "add", "."])
    run([*git, "commit", "-q", "-m", "base"])
    clean = user_tree(tree)
    assert clean.kind == "tree" and clean.id.endswith(" clean") and clean.base == tree
    (tree / "net" / "mptcp" / "ctrl.c").write_text("int y;\n")
    dirty = user_tree(tree)
    assert dirty.id.split()[0] == clean.id.split()[0] and dirty.id != clean.id
    assert dirty.key == clean.key  # same build directory: make rebuilds what changed
    (tree / ".config").write_text("CONFIG_MPTCP=y\n")
    with pytest.raises(KernelError, match="built in place.*mrproper"):
        user_tree(tree)


def test_a_kasan_kernel_gets_the_longer_boot_timeout(tmp_path):
    from harness.kernel.layout import IMAGE
    from harness.vm import machine

    image = tmp_path / "build" / IMAGE
    image.parent.mkdir(parents=True)
    assert machine.boot_timeout_for(image) == machine.BOOT_TIMEOUT  # no .config: not ours
    (tmp_path / "build" / ".config").write_text("CONFIG_MPTCP=y\n")
    assert machine.boot_timeout_for(image) == machine.BOOT_TIMEOUT
    (tmp_path / "build" / ".config").write_text("CONFIG_MPTCP=y\nCONFIG_KASAN=y\n")
    assert machine.boot_timeout_for(image) == machine.DEBUG_BOOT_TIMEOUT
    assert machine.boot_timeout_for(tmp_path / "bzImage") == machine.BOOT_TIMEOUT


def test_the_series_options_are_ours_unless_an_item_overrides_them():
    wanted = kconfig.requested("normal")
    assert wanted["CONFIG_MPTCP_EXTRA_SCHEDULERS"] == "y"
    assert wanted.from_series == {"CONFIG_MPTCP_EXTRA_SCHEDULERS"} and not wanted.from_tree
    assert "CONFIG_MPTCP_EXTRA_SCHEDULERS" not in kconfig.requested("no-mptcp")
    off = kconfig.requested("normal", ["CONFIG_MPTCP_EXTRA_SCHEDULERS=n"])
    assert off["CONFIG_MPTCP_EXTRA_SCHEDULERS"] == "n" and not off.from_series


def test_a_series_option_is_left_out_of_a_tree_without_it_and_required_in_one_with_it(
        tmp_path, fake_make, monkeypatch):
    tree = tmp_path / "linux"
    (tree / "net" / "mptcp").mkdir(parents=True)
    build_dir = tmp_path / "build"
    kconfig.configure(tree, build_dir, kconfig.requested("normal"))
    assert "CONFIG_MPTCP_EXTRA_SCHEDULERS" not in (build_dir / ".config").read_text()

    (tree / "net" / "mptcp" / "Kconfig").write_text(
        "config MPTCP\n\tbool\n\nconfig MPTCP_EXTRA_SCHEDULERS\n\tbool \"extra\"\n")
    kconfig.configure(tree, build_dir, kconfig.requested("normal"))
    assert "CONFIG_MPTCP_EXTRA_SCHEDULERS=y" in (build_dir / ".config").read_text()
    monkeypatch.setenv("FAKE_MAKE_DROP", "CONFIG_MPTCP_EXTRA_SCHEDULERS")
    with pytest.raises(kconfig.ConfigDropped, match=r"CONFIG_MPTCP_EXTRA_SCHEDULERS=y \(got"):
        kconfig.configure(tree, build_dir, kconfig.requested("normal"))
