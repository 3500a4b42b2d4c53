import pytest

from harness.mptcp.mib import MibSnapshot, parse_netstat

NETSTAT = """TcpExt: SyncookiesSent ListenDrops
TcpExt: 0 4
MPTcpExt: MPCapableSYNRX MPCapableSYNTX MPJoinSynRx
MPTcpExt: 1 2 0
"""


def test_parse_groups_and_counters():
    groups = parse_netstat(NETSTAT)
    assert groups["TcpExt"] == {"SyncookiesSent": 0, "ListenDrops": 4}
    assert groups["MPTcpExt"]["MPCapableSYNTX"] == 2


def test_malformed_pair_is_refused():
    with pytest.raises(ValueError, match="MPTcpExt"):
        parse_netstat("MPTcpExt: A B\nTcpExt: 1 2\n")


def test_delta_lists_only_counters_that_moved_and_new_ones():
    before = MibSnapshot(None, parse_netstat(NETSTAT))
    after = MibSnapshot(None, {"MPTcpExt": {"MPCapableSYNRX": 1, "MPCapableSYNTX": 5,
                                            "MPJoinSynRx": 0, "AddAddr": 1}})
    assert before.delta(after) == {"MPCapableSYNTX": 3, "AddAddr": 1}
    assert after.get("NotThere") == 0 and not after.has("NotThere") and after.has("AddAddr")


def test_snapshot_of_this_namespace_has_mptcp_counters_when_the_kernel_has_mptcp():
    from pathlib import Path

    from harness.mptcp.mib import snapshot

    if not Path("/proc/sys/net/mptcp").exists():
        pytest.skip("the running kernel has no MPTCP")
    assert snapshot().has("MPCapableSYNTX")
