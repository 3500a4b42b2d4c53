"""MPTCP constants from the kernel's UAPI (include/uapi/linux/mptcp.h, linux/in.h, linux/tcp.h)."""

import socket

IPPROTO_MPTCP = 262
SOL_MPTCP = 284
SOL_TCP = socket.SOL_TCP

# getsockopt(SOL_MPTCP, ...)
MPTCP_INFO = 1
MPTCP_TCPINFO = 2
MPTCP_SUBFLOW_ADDRS = 3
MPTCP_FULL_INFO = 4

# getsockopt(SOL_TCP, ...)
TCP_INFO = 11
TCP_ULP = 31
TCP_IS_MPTCP = 43

# struct mptcp_info.mptcpi_flags
MPTCP_INFO_FLAG_FALLBACK = 1 << 0
MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED = 1 << 1

# endpoint flags (MPTCP_PM_ADDR_FLAG_*)
MPTCP_PM_ADDR_FLAG_SIGNAL = 1 << 0
MPTCP_PM_ADDR_FLAG_SUBFLOW = 1 << 1
MPTCP_PM_ADDR_FLAG_BACKUP = 1 << 2
MPTCP_PM_ADDR_FLAG_FULLMESH = 1 << 3
MPTCP_PM_ADDR_FLAG_IMPLICIT = 1 << 4
