"""A reproduction decodes each distinct trace once: the key says which parts of a splat the
decode script explains, and a later run with the same trace points to the decoded one."""

from __future__ import annotations

from pathlib import Path

from harness.runs.repro import ReproVm
from harness.vm import machine
from harness.vm.decode import trace_key
from harness.vm.oracle import find_splats

SPLAT = """\
[   {time}] ------------[ cut here ]------------
[   {time}] WARNING: CPU: {cpu} PID: {pid} at net/mptcp/pm_kernel.c:1622 f_avail+0x38/0x40
[   {time}] RIP: 0010:f_avail+0x38/0x40
[   {time}] Code: 00 c3 <0f> 0b c3
[   {time}] RAX: {rax} RBX: 0000000000000000
[   {time}] Call Trace:
[   {time}]  <TASK>
[   {time}]  set_flags+{offset}/0x3a0
[   {time}]  ? genl_parse.constprop.0+0x78/0xe0
[   {time}]  </TASK>
[   {time}] ---[ end trace 0000000000000000 ]---
"""


def splat_text(time="27.893116", cpu=0, pid=120, rax="0000000000000000", offset="0x2d1"):
    return SPLAT.format(time=time, cpu=cpu, pid=pid, rax=rax, offset=offset)


def test_the_key_is_the_frames_and_code_whatever_the_time_pid_and_registers():
    key = trace_key(splat_text())
    assert key == ("f_avail+0x38/0x40", "f_avail+0x38/0x40", "Code: 00 c3 <0f> 0b c3",
                   "set_flags+0x2d1/0x3a0", "genl_parse.constprop.0+0x78/0xe0")
    assert trace_key(splat_text(time="31.5", cpu=1, pid=77, rax="ffff888002667800")) == key
    assert trace_key(splat_text(offset="0x2d2")) != key
    assert trace_key("kmemleak: 1 new suspected memory leaks") == ()


def test_a_later_run_with_the_same_trace_points_to_the_decoded_one(tmp_path):
    image = tmp_path / "bzImage"  # not in a build directory: decoding says why not
    holder = ReproVm(machine.BootOptions(image=image, timeout=1.0), tmp_path)
    first, same, other = (find_splats(splat_text(**kw).splitlines())[0]
                          for kw in ({}, {"pid": 99}, {"offset": "0x2d2"}))
    assert "(not decoded:" in holder.decoded(first, "run-01")
    again = holder.decoded(same, "run-02")
    assert again.startswith(same.text) and "the same trace as in run-01" in again
    assert "(not decoded:" in holder.decoded(other, "run-02")


def test_a_splat_without_frames_is_decoded_every_time(tmp_path):
    holder = ReproVm(machine.BootOptions(image=Path(tmp_path / "bzImage"), timeout=1.0),
                     tmp_path)
    text = "[    1.0] BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 30s!"
    splats = find_splats([text])
    assert splats, "the oracle should see the lockup as a splat"
    assert "(not decoded:" in holder.decoded(splats[0], "run-01")
    assert "(not decoded:" in holder.decoded(splats[0], "run-02")
