import pytest

from harness import debian


def test_non_debian_is_refused_with_the_package_list(tmp_path, monkeypatch):
    monkeypatch.setattr(debian.os, "geteuid", lambda: 0)
    os_release = tmp_path / "os-release"
    os_release.write_text('ID=fedora\nVERSION_ID="41"\n')
    with pytest.raises(debian.SetupError, match="Debian 12 only; this is fedora 41") as info:
        debian.check_platform(os_release)
    assert "nftables" in str(info.value) and "tcpdump" in str(info.value)


def test_non_root_is_refused(monkeypatch):
    monkeypatch.setattr(debian.os, "geteuid", lambda: 1000)
    with pytest.raises(debian.SetupError, match="must run as root"):
        debian.check_platform()


def test_debian_12_as_root_passes(tmp_path, monkeypatch):
    monkeypatch.setattr(debian.os, "geteuid", lambda: 0)
    os_release = tmp_path / "os-release"
    os_release.write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'
                          'VERSION_ID="12"\n')
    debian.check_platform(os_release)


def test_installed_packages_are_not_missing():
    if debian.run(["sh", "-c", "command -v dpkg-query"], check=False).returncode != 0:
        pytest.skip("not a dpkg system")
    assert debian.missing_packages(["dpkg"]) == []
    assert debian.missing_packages(["no-such-package-mlab"]) == ["no-such-package-mlab"]
