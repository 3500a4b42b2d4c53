import os
import socket
import subprocess

import pytest

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


def test_a_namespace_is_new_bound_where_ip_finds_it_and_named_when_taken(mptcp_kernel):
    name = "mlab-netns-unit-new"
    netns.create(name)
    try:
        assert os.stat(netns.ns_path(name)).st_ino != os.stat("/proc/self/ns/net").st_ino
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
        assert name in listed.stdout.split()
        with pytest.raises(netns.NamespaceError, match="exists already"):
            netns.create(name)
    finally:
        netns.remove(name)
    assert not netns.exists(name)
