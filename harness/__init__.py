"""mptcp-lab: build, boot and test the Linux kernel's Multipath TCP from Python."""

PROJECT_PREFIX = "mlab"
