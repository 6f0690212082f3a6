"""The HTTP/1.1 responder, without sockets: what bytes in give what bytes out."""

from __future__ import annotations

import pytest

from forkshare.impl.http import MAX_HEAD_BYTES, Responses, Session

RESPONSES = Responses(pid=42, generation=3, slot=1)


def feed(*chunks: bytes, keep_alive: bool = True) -> tuple[Session, bytes, bool]:
    session = Session()
    out, close = b"", False
    for chunk in chunks:
        produced, close = session.feed(chunk, RESPONSES, keep_alive)
        out += produced
    return session, out, close


def test_a_response_names_the_pid_and_generation() -> None:
    _, out, close = feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"X-Forkshare-Pid: 42\r\n" in out
    assert b"X-Forkshare-Generation: 3\r\n" in out
    assert out.endswith(b"\r\n\r\npid=42 generation=3 slot=1\n")
    assert not close
    assert b"Connection: keep-alive" in out


def test_http10_and_connection_close_end_the_connection() -> None:
    assert feed(b"GET / HTTP/1.0\r\n\r\n")[2]
    assert not feed(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")[2]
    assert feed(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")[2]


def test_the_worker_can_refuse_keep_alive() -> None:
    _, out, close = feed(b"GET / HTTP/1.1\r\n\r\n", keep_alive=False)
    assert close
    assert b"Connection: close" in out


def test_a_request_split_across_reads_is_answered_once_complete() -> None:
    session, out, _ = feed(b"GET / HT", b"TP/1.1\r\nHost:", b" x\r\n\r\n")
    assert out.count(b"HTTP/1.1 200") == 1
    assert session.buffer == b""


def test_pipelined_requests_get_one_response_each_in_order() -> None:
    session, out, close = feed(b"GET /a HTTP/1.1\r\n\r\nHEAD /b HTTP/1.1\r\n\r\n")
    assert out.count(b"HTTP/1.1 200") == 2
    assert not close
    assert out.endswith(b"Connection: keep-alive\r\n\r\n"), "HEAD has no body"
    assert session.statuses == [200, 200]


def test_a_body_is_skipped_by_its_length() -> None:
    session, out, _ = feed(
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel", b"loGET / HTTP/1.1\r\n\r\n"
    )
    assert out.count(b"HTTP/1.1 200") == 2
    assert session.buffer == b""


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"garbage\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD_BYTES, 431),
    ],
)
def test_bad_requests_get_an_error_and_a_close(request_bytes: bytes, status: int) -> None:
    session, out, close = feed(request_bytes)
    assert out.startswith(f"HTTP/1.1 {status} ".encode())
    assert close
    assert session.statuses == [status]
