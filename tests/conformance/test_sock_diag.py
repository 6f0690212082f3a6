"""The netlink socket table says what /proc/net/tcp says, row for row, on real sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from forkshare.conformance.observe.procfs import TcpRow, TcpState, parse_tcp_table
from forkshare.conformance.observe.sock_diag import read_tcp_rows

pytestmark = pytest.mark.process


def _from_text() -> tuple[TcpRow, ...]:
    return tuple(
        row
        for name in ("tcp", "tcp6")
        if (path := Path("/proc/net") / name).exists()
        for row in parse_tcp_table(path.read_text(), skip_time_wait=True)
    )


def _on(rows: tuple[TcpRow, ...], port: int) -> list[TcpRow]:
    return sorted((r for r in rows if port in (r.local.port, r.remote.port)), key=repr)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(5)
    yield sock
    sock.close()


def test_netlink_rows_equal_the_proc_rows_for_a_listener_with_queued_and_accepted_clients(
    listener: socket.socket,
) -> None:
    port = listener.getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    accepted, _ = listener.accept()
    try:
        netlink, text = _on(read_tcp_rows(), port), _on(_from_text(), port)
        assert netlink == text
        [listening] = [r for r in netlink if r.state == TcpState.LISTEN]
        assert listening.rx_queue == 2  # K11: two still queued
    finally:
        accepted.close()
        for client in clients:
            client.close()


def test_a_silent_client_held_by_defer_accept_is_a_syn_recv_row_in_both(
    listener: socket.socket,
) -> None:
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 5)
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    try:
        for rows in (read_tcp_rows(), _from_text()):
            states = {r.state for r in _on(rows, port) if r.local.port == port}
            assert TcpState.SYN_RECV in states  # K19
            [listening] = [r for r in _on(rows, port) if r.state == TcpState.LISTEN]
            assert listening.rx_queue == 0
    finally:
        client.close()
