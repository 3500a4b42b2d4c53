"""A guest command's deadline, which a step after the command may extend once (ssh._Deadline)."""

import time

import pytest

from harness.vm.ssh import _Deadline


def test_a_deadline_without_more_time_passes_at_its_timeout():
    deadline = _Deadline(0.3, None)
    assert not deadline.passed()
    time.sleep(0.35)
    assert deadline.passed() and deadline.allowed == 0.3


def test_more_time_is_asked_once_when_the_timeout_has_passed():
    asked = []
    deadline = _Deadline(0.3, lambda: asked.append(1) or 0.6)
    assert not deadline.passed() and asked == []
    time.sleep(0.35)
    assert not deadline.passed() and asked == [1]
    assert deadline.allowed == pytest.approx(0.9)
    time.sleep(0.6)
    assert deadline.passed() and asked == [1]


def test_no_more_time_given_is_the_end():
    deadline = _Deadline(0.01, lambda: 0.0)
    time.sleep(0.02)
    assert deadline.passed()
