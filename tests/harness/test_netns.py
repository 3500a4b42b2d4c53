import socket

from harness import netns


def test_created_here_tracks_this_process_only(mptcp_kernel):
    name = "mlab-netns-unit-test"
    netns.create(name)
    try:
        assert name in netns.created_here() and netns.exists(name)
        with netns.entered(name):
            inside = socket.if_nameindex()
        assert [n for _i, n in inside] == ["lo"]  # a fresh namespace has only loopback
    finally:
        netns.remove(name)
    assert name not in netns.created_here() and not netns.exists(name)
