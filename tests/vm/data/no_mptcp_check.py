"""Run by tests/vm/test_no_mptcp_kernel.py inside a guest whose kernel has CONFIG_MPTCP=n:
an MPTCP socket is refused with EPROTONOSUPPORT, and plain TCP moves data intact."""

import errno
import hashlib
import os
import socket
import threading

IPPROTO_MPTCP = 262
PAYLOAD = os.urandom(4 << 20)


def mptcp_socket_refused() -> None:
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP).close()
    except OSError as exc:
        assert exc.errno == errno.EPROTONOSUPPORT, f"MPTCP socket: {exc!r}"
        print("MPTCP socket: EPROTONOSUPPORT")
        return
    raise SystemExit("an MPTCP socket was created on a kernel without MPTCP")


def tcp_transfer_is_intact() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        received = []

        def serve():
            conn, _ = server.accept()
            with conn:
                while chunk := conn.recv(65536):
                    received.append(chunk)

        reader = threading.Thread(target=serve)
        reader.start()
        with socket.create_connection(server.getsockname()) as client:
            assert client.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL) == 6
            client.sendall(PAYLOAD)
        reader.join(timeout=60)
    digest = hashlib.sha256(b"".join(received)).hexdigest()
    assert digest == hashlib.sha256(PAYLOAD).hexdigest(), "TCP data corrupted"
    print(f"TCP: {len(PAYLOAD)} bytes intact")


if __name__ == "__main__":
    assert not os.path.exists("/proc/sys/net/mptcp"), "net.mptcp sysctls on a no-MPTCP kernel"
    mptcp_socket_refused()
    tcp_transfer_is_intact()
