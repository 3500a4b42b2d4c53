"""Run by tests/vm/test_session.py inside the guest (not collected on its own): a test
during which the kernel logs a WARNING, between two tests that leave the kernel alone."""

LKDTM = "/sys/kernel/debug/provoke-crash/DIRECT"


def test_quiet_before():
    assert True


def test_provokes_a_warning():
    with open(LKDTM, "w") as f:
        f.write("WARNING")


def test_quiet_after():
    assert True
