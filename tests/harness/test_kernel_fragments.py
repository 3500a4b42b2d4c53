"""What the configuration fragments ask for: the MPTCP selftests' needs (built in), what
virtme-ng needs to boot and end a run, and nothing that needs a module install."""

from pathlib import Path

from harness.kernel import kconfig

DATA = Path(__file__).parent / "data" / "kernel"
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
        assert all((kconfig.CONFIG_DIR / f"{name}.config").exists() for name in fragments)
        assert kconfig.requested(variant)


def test_the_mptcp_selftests_needs_are_all_built_in():
    """tools/testing/selftests/net/mptcp/config of 6.12 (a copy in tests/harness/data):
    what it wants as a module we want built in, as the VM installs no modules."""
    wanted = kconfig.requested("normal")
    selftests = kconfig.parse((DATA / "mptcp-selftests-6.12.config").read_text(), "selftests")
    missing = [f"{k}={v}" for k, v in selftests.items()
               if wanted.get(k) != ("y" if v == "m" else v)]
    assert missing == []


def test_virtme_ng_can_boot_it_and_no_option_is_a_module():
    for variant in kconfig.VARIANTS:
        wanted = kconfig.requested(variant)
        assert [o for o in VIRTME_NEEDS if wanted.get(f"CONFIG_{o}") != "y"] == [], variant
        assert wanted["CONFIG_MODULES"] == "n"
        assert [k for k, v in wanted.items() if v == "m"] == []


def test_the_base_is_lean():
    wanted = kconfig.requested("normal")
    for option in ("CONFIG_SOUND", "CONFIG_DRM", "CONFIG_USB_SUPPORT"):
        assert wanted[option] == "n", option
    assert not any(k.startswith(("CONFIG_KASAN", "CONFIG_DEBUG_INFO_DWARF")) and v == "y"
                   for k, v in wanted.items())
