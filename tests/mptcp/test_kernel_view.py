"""drgn's view of a live connection (harness.mptcp.kernel_view) agrees with what the socket
API says of it: the msk found from our socket, and from the kernel's token hash."""

from harness import traffic
from harness.mptcp.kernel_view import all_msks, describe, msk_of_socket, view
from harness.mptcp.sockets import mptcp_info, subflow_addrs

MB = 1_000_000


def test_the_kernel_view_of_a_two_subflow_connection_agrees_with_mptcp_info(topology,
                                                                           kernel_view):
    topo = topology("two-paths")
    client, server, addr = topo.ns("client"), topo.ns("server"), topo.addresses("server", 4)[0]
    with traffic.session(client, server, addr, subflows=2) as live:
        live.sender.send(nbytes=MB)
        traffic.wait_all_acked(live.sock)
        info, addrs = mptcp_info(live.sock), subflow_addrs(live.sock)
        msk = view(msk_of_socket(kernel_view, live.sock))
        tokens = {view(found).token for found in all_msks(kernel_view)}
    print("\n" + describe(msk))
    assert msk.token == info.token
    assert msk.state == "ESTABLISHED" and msk.fully_established
    assert msk.bytes_acked == info.bytes_acked == live.sender.nbytes
    assert msk.snd_una == msk.write_seq, "all written data is acked at the data level"
    assert msk.pm_type == "kernel" and msk.pm_subflows == info.subflows == 1
    assert sorted(s.local for s in msk.subflows) == sorted(a.local for a in addrs)
    assert sorted(s.remote for s in msk.subflows) == sorted(a.remote for a in addrs)
    assert all(s.state == "ESTABLISHED" and s.snd_una == s.snd_nxt for s in msk.subflows)
    # the token hash holds both ends of the connection: ours and the server's
    assert msk.token in tokens and len(tokens) >= 2
