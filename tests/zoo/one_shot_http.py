"""One request per connection: read a request head, answer ``200`` with ``Connection: close``.

The body names the process that answered (``served by pid N``), so a test can tell who served a
client without reading /proc. Shared by every zoo server: what each does *around* a connection
(how it accepts, when it stops) is its own design.
"""

from __future__ import annotations

import os
import socket
import time

HEAD_END = b"\r\n\r\n"
MAX_HEAD = 16 * 1024


def read_request(conn: socket.socket, timeout: float | None) -> bool:
    """Read until the end of a request head; True when a complete head arrived.

    ``timeout`` bounds the whole read (``None``: wait as long as the client stays silent). A
    client that closes, resets, sends too much or stays silent past ``timeout`` gives False.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    received = b""
    while HEAD_END not in received:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            conn.settimeout(remaining)
        try:
            chunk = conn.recv(4096)
        except (TimeoutError, OSError):
            return False
        if not chunk or len(received) > MAX_HEAD:
            return False
        received += chunk
    return True


def answer(conn: socket.socket) -> None:
    """Send the ``200`` response; a client that went away is not an error."""
    body = f"served by pid {os.getpid()}\n".encode()
    head = (
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    try:
        conn.settimeout(5.0)
        conn.sendall(head + body)
    except OSError:
        pass


def serve_connection(conn: socket.socket, read_timeout: float | None) -> None:
    """Serve one accepted connection and close it: the response if a request arrived in time."""
    with conn:
        if read_request(conn, read_timeout):
            answer(conn)
