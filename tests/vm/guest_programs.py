"""Python programs the VM tests run in the guest (`python3 -c`)."""

# One MPTCP connection on loopback (protocol 262), 1000 bytes from client to server;
# `listener`, `client` and `server` stay open for what a test adds after it.
LOOPBACK_CONNECTION = (
    "import socket\n"
    "listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)\n"
    "listener.bind(('127.0.0.1', 0))\n"
    "listener.listen()\n"
    "client = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)\n"
    "client.connect(listener.getsockname())\n"
    "server, _ = listener.accept()\n"
    "client.sendall(b'x' * 1000)\n"
    "assert len(server.recv(1000, socket.MSG_WAITALL)) == 1000\n")
