"""Sender.send(rate_bit=...) paces its writes (a socket pair: no root, no MPTCP needed)."""

import socket
import threading

import pytest

from harness import traffic


def drain(sock: socket.socket) -> None:
    while sock.recv(traffic.CHUNK):
        pass


def test_a_paced_sender_takes_the_time_its_rate_gives():
    ours, peer = socket.socketpair()
    reader = threading.Thread(target=drain, args=(peer,), daemon=True)
    reader.start()
    with ours, peer:
        sender = traffic.Sender(ours, "tcp")
        sent = sender.send(nbytes=50_000, rate_bit=1_000_000)  # 0.4 s at 125 kB/s
        ours.shutdown(socket.SHUT_WR)
        reader.join(timeout=5)
    assert sent == 50_000
    assert 0.35 <= sender.seconds < 1.5, f"50 kB at 1 Mbit/s took {sender.seconds:.2f} s"


def test_a_paced_sender_writes_small_chunks():
    ours, peer = socket.socketpair()
    reader = threading.Thread(target=drain, args=(peer,), daemon=True)
    reader.start()
    progress = []
    with ours, peer:
        traffic.Sender(ours, "tcp").send(nbytes=3 * traffic.PACED_CHUNK, rate_bit=10_000_000,
                                         on_progress=progress.append)
        ours.shutdown(socket.SHUT_WR)
        reader.join(timeout=5)
    assert progress == [traffic.PACED_CHUNK * n for n in (1, 2, 3)]


def test_a_sender_given_an_event_sends_until_another_thread_sets_it():
    ours, peer = socket.socketpair()
    reader = threading.Thread(target=drain, args=(peer,), daemon=True)
    reader.start()
    stop = threading.Event()
    with ours, peer:
        sender = traffic.Sender(ours, "tcp")
        timer = threading.Timer(0.5, stop.set)
        timer.start()
        sent = sender.send(until=stop, rate_bit=1_000_000)
        ours.shutdown(socket.SHUT_WR)
        reader.join(timeout=5)
    assert stop.is_set() and 0.45 <= sender.seconds < 1.5
    assert sent == sender.nbytes > 0


def test_a_sender_needs_exactly_one_limit():
    ours, peer = socket.socketpair()
    with ours, peer:
        sender = traffic.Sender(ours, "tcp")
        for limits in ({}, {"nbytes": 1, "until": threading.Event()}):
            with pytest.raises(traffic.TrafficError, match="exactly one"):
                sender.send(**limits)
