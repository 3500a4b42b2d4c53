"""Coverage of net/mptcp: gcov counters read in the guest, lcov reports on the host."""
