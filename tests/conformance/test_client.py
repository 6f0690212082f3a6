"""What a client saw, classified in the model's words: served, reset, refused, timeout, closed."""

from __future__ import annotations

import socket
import threading

from forkshare.conformance.observe.client import Client, probe
from forkshare.conformance.observe.deadline import poll_until
from forkshare.conformance.observe.launch import free_port
from forkshare.conformance.observe.procfs import Endpoint
from forkshare.model.observation import Outcome


def test_nothing_listening_is_refused() -> None:
    result = probe(free_port(), timeout=1)
    assert result.outcome == Outcome.REFUSED
    assert result.local is None


def test_a_queued_connection_nobody_accepts_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        result = probe(listener.getsockname()[1], timeout=0.2)
    assert result.outcome == Outcome.TIMEOUT
    assert result.local is not None


def test_closing_the_listener_resets_its_queued_connections() -> None:
    # K8: closing a listener aborts the established children in its accept queue.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    timer = threading.Timer(0.2, listener.close)
    timer.start()
    try:
        result = probe(listener.getsockname()[1], timeout=3)
    finally:
        timer.join()
    assert result.outcome == Outcome.RESET


def test_an_answer_is_served_with_the_clients_address() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def answer() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(100)
                conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n")

        server = threading.Thread(target=answer)
        server.start()
        result = probe(listener.getsockname()[1], timeout=3)
        server.join(3)
    assert result.outcome == Outcome.SERVED
    assert result.first_bytes.startswith(b"HTTP/1.0 200")
    assert result.local is not None
    assert result.local.host == "127.0.0.1"
    assert isinstance(result.local, Endpoint)


def test_a_close_without_a_byte_is_closed() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        server = threading.Thread(target=lambda: listener.accept()[0].close())
        server.start()
        result = probe(listener.getsockname()[1], request=b"", timeout=3)
        server.join(3)
    assert result.outcome == Outcome.CLOSED


def _outcome_after(request_sent: bool) -> str:
    """A :class:`Client` against a server that writes an error notice at once and closes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = Client(listener.getsockname()[1])
        if request_sent:
            client.send_request()
        conn, _ = listener.accept()
        with conn:
            if request_sent:
                conn.recv(4096)  # unread bytes would turn the close into a reset
            conn.sendall(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
        return poll_until(lambda: _final(client), timeout=3, interval=0.01) or "no verdict"


def _final(client: Client) -> str | None:
    outcome = client.outcome()
    return None if outcome == Outcome.PENDING else outcome


def test_bytes_before_the_request_is_sent_are_no_answer() -> None:
    # gunicorn's fast stop writes an error page to a client that never sent a byte: the server
    # closed that connection, it did not serve a request.
    assert _outcome_after(request_sent=False) == Outcome.CLOSED


def test_bytes_after_the_request_are_its_answer() -> None:
    assert _outcome_after(request_sent=True) == Outcome.SERVED
