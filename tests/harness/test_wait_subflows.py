"""wait_subflows() against the real kernel: a timeout says what the subflows were doing."""

import pytest

from harness import traffic
from harness.mptcp.sockets import wait_subflows
from harness.topology import load_named
from harness.wait import WaitTimeout


def test_a_join_that_never_comes_times_out_naming_the_subflow_states(mptcp_kernel, topology):
    """single-path has no second address: the one subflow stays alone, and the error says
    it was established, so a reader knows the join was never even tried."""
    topo = topology(load_named("single-path"))
    addr = topo.addresses("server", 4)[0]
    with traffic.Sink(topo.ns("server"), addr) as sink, \
            traffic.connect(topo.ns("client"), addr, sink.port) as sock:
        assert wait_subflows(sock, 1).subflows == 0
        with pytest.raises(WaitTimeout) as failure:
            wait_subflows(sock, 2, timeout=0.3)
    assert str(failure.value) == ("timed out after 0.3 s waiting for 2 established subflows on "
                                  "the MPTCP connection; subflow TCP states at the end: ESTAB")
