"""Which tests of our series run in the VM: decided by the booted kernel's build record."""

import pytest

from harness.kernel.record import BuildRecord, patch_slug
from harness.pytest_plugin import series_verdict

ROUNDROBIN = "mptcp-sched-add-the-roundrobin-scheduler"


def record(*names):
    return BuildRecord("debian-6.12", [[n, "0" * 64] for n in names], "cfg", "/b/bzImage",
                       "/b/vmlinux")


@pytest.mark.parametrize("name", [
    "0005-mptcp-sched-add-the-roundrobin-scheduler.patch",
    "0012-mptcp-sched-add-the-roundrobin-scheduler.patch",  # renumbered in a v2
    "v2-0003-mptcp-sched-add-the-roundrobin-scheduler.patch",  # format-patch -v2
])
def test_a_patch_is_known_by_its_subject_whatever_its_number(name):
    assert patch_slug(name) == ROUNDROBIN
    assert series_verdict(record(name), ROUNDROBIN) == ("run", "")


SOCKOPTS = "mptcp-sockopt-support-TCP_-MAXSEG-SYNCNT-USER_TIMEOU"  # cut to fit, without -v2


@pytest.mark.parametrize("name", [
    "0002-mptcp-sockopt-support-TCP_-MAXSEG-SYNCNT-USER_TIMEOU.patch",
    "v2-0002-mptcp-sockopt-support-TCP_-MAXSEG-SYNCNT-USER_TIM.patch",  # cut shorter
])
def test_a_subject_cut_to_fit_a_versioned_file_name_is_the_same_patch(name):
    assert series_verdict(record(name), SOCKOPTS) == ("run", "")


def test_a_short_slug_is_not_taken_for_a_cut_of_a_longer_one():
    assert series_verdict(record("0001-mptcp-sched.patch"), ROUNDROBIN)[0] == "fail"
    assert series_verdict(record("0001-mptcp-sched-add-the-roundrobin-scheduler-v2.patch"),
                          ROUNDROBIN)[0] == "fail"


def test_a_series_that_lacks_the_patch_fails_the_test_and_says_what_it_had():
    verdict, why = series_verdict(record("0001-mptcp-sockopt-x.patch"), ROUNDROBIN)
    assert verdict == "fail"
    assert ROUNDROBIN in why and "0001-mptcp-sockopt-x.patch" in why


def test_a_kernel_built_without_any_series_skips_the_test():
    verdict, why = series_verdict(record(), ROUNDROBIN)
    assert verdict == "skip" and "without a patch series" in why


def test_no_build_record_fails_rather_than_guessing():
    verdict, why = series_verdict(None, ROUNDROBIN)
    assert verdict == "fail" and "no build record" in why


def test_the_record_of_an_image_is_found_in_its_build_directory(tmp_path):
    image = tmp_path / "arch" / "x86" / "boot" / "bzImage"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"kernel")
    built = BuildRecord("src", [["0001-a.patch", "1" * 64]], "cfg", str(image),
                        str(tmp_path / "vmlinux"))
    built.save(tmp_path)
    assert BuildRecord.of_image(image) == built
    assert BuildRecord.of_image(tmp_path / "bzImage") is None  # not in a build directory


def test_the_record_is_found_through_a_link_to_the_build_directory(tmp_path):
    """A build made through a cache whose build/ is a link records the linked path; the VM
    boots the resolved image."""
    real = tmp_path / "real"
    image = real / "arch" / "x86" / "boot" / "bzImage"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"kernel")
    (tmp_path / "linked").symlink_to(real)
    linked_image = tmp_path / "linked" / "arch" / "x86" / "boot" / "bzImage"
    built = BuildRecord("src", [], "cfg", str(linked_image), "vmlinux")
    built.save(real)
    assert BuildRecord.of_image(image) == built
