"""What the configuration fragments ask for: the MPTCP selftests' needs (from the tree),
what virtme-ng needs to boot and end a run, and nothing that needs a module install."""

from harness.kernel import kconfig

# What virtme-ng 1.42 relies on in the guest: virtio devices, its consoles, the host
# filesystem over 9p or virtiofs, overlays for writable directories, and ACPI so that its
# final 'poweroff -f' ends QEMU instead of halting the guest forever.
VIRTME_NEEDS = ("VIRTIO", "VIRTIO_PCI", "VIRTIO_CONSOLE", "SERIAL_8250_CONSOLE", "NET_9P",
                "NET_9P_VIRTIO", "9P_FS", "FUSE_FS", "VIRTIO_FS", "OVERLAY_FS", "DEVTMPFS",
                "TMPFS", "UNIX", "UNIX98_PTYS", "BINFMT_SCRIPT", "INOTIFY_USER", "ACPI")


def test_every_fragment_line_parses_and_each_variant_resolves():
    for path in sorted(kconfig.CONFIG_DIR.glob("*.config")):
        kconfig.parse(path.read_text(), str(path))  # raises naming file:line otherwise
    for variant, fragments in kconfig.VARIANTS.items():
        ours = [name for name in fragments if not name.startswith(kconfig.TREE)]
        assert all((kconfig.CONFIG_DIR / f"{name}.config").exists() for name in ours)
        assert kconfig.requested(variant).values


def test_virtme_ng_can_boot_it_and_no_option_is_a_module(tmp_path):
    tree = tmp_path / "linux"
    (tree / "kernel" / "configs").mkdir(parents=True)
    (tree / "kernel" / "configs" / "debug.config").write_text(
        "CONFIG_MODULES=y\nCONFIG_DUMMY_DEBUG=m\n# CONFIG_VIRTIO is not set\n")
    for variant in kconfig.VARIANTS:
        wanted = kconfig.requested(variant, tree=tree)
        assert [o for o in VIRTME_NEEDS if wanted.get(f"CONFIG_{o}") != "y"] == [], variant
        assert wanted["CONFIG_MODULES"] == "n"
        assert [k for k, v in wanted.values.items() if v == "m"] == []


def test_the_base_is_lean():
    wanted = kconfig.requested("normal")
    for option in ("CONFIG_SOUND", "CONFIG_DRM", "CONFIG_USB_SUPPORT"):
        assert wanted[option] == "n", option
    assert not any(k.startswith(("CONFIG_KASAN", "CONFIG_DEBUG_INFO_DWARF")) and v == "y"
                   for k, v in wanted.values.items())
