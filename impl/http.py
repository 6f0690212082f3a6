"""The tiny HTTP/1.1 responder: parse request heads, answer with who served them.

Every request gets ``200`` with the body ``pid=P generation=G slot=S`` and the headers
``X-Forkshare-Pid`` and ``X-Forkshare-Generation``, so a person (or the verifier) sees which worker
of which generation served them. Responses are preformatted once per worker; the hot path is one
``find`` and one ``split`` per request. No sockets here: :class:`Session` turns received bytes into
bytes to send, and the worker owns the I/O and the timeouts.

Errors always close the connection: malformed head → 400, head larger than
:data:`MAX_HEAD_BYTES` → 431, body larger than :data:`MAX_BODY_BYTES` → 413, ``Transfer-Encoding``
→ 501 (bodies are only skipped by ``Content-Length``), a version other than 1.0/1.1 → 505, and the
worker sends 408 when a started head does not complete in time.

Discussion:
    *No Date header.* RFC 9110 asks an origin server with a clock to send one; it would force a
    re-format every second and tells nothing about socket sharing. Left out on purpose.
"""

from __future__ import annotations

from typing import Final

MAX_HEAD_BYTES: Final = 8192  # nginx's large_client_header_buffers (8k)
MAX_BODY_BYTES: Final = 1 << 20

REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    408: "Request Timeout",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}
_VERSIONS: Final = (b"HTTP/1.1", b"HTTP/1.0")


class Responses:
    """The preformatted responses of one worker (its pid, generation and slot are in them)."""

    __slots__ = ("body", "close", "head_close", "head_keep_alive", "keep_alive")

    def __init__(self, pid: int, generation: int, slot: int) -> None:
        self.body = f"pid={pid} generation={generation} slot={slot}\n".encode()
        head = (
            "HTTP/1.1 200 OK\r\nServer: forkshare\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(self.body)}\r\n"
            f"X-Forkshare-Pid: {pid}\r\nX-Forkshare-Generation: {generation}\r\n"
        ).encode()
        self.head_keep_alive = head + b"Connection: keep-alive\r\n\r\n"
        self.head_close = head + b"Connection: close\r\n\r\n"
        self.keep_alive = self.head_keep_alive + self.body
        self.close = self.head_close + self.body

    @staticmethod
    def error(status: int) -> bytes:
        """An error response; it always announces ``Connection: close``."""
        reason = REASONS[status]
        body = f"{status} {reason}\n".encode()
        return (
            f"HTTP/1.1 {status} {reason}\r\nServer: forkshare\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body


class Session:
    """The request-parsing state of one connection.

    Attributes:
        buffer: received bytes not yet consumed (a started, incomplete request).
        served: how many responses this connection has been given.
        statuses: the statuses of the responses produced by the last :meth:`feed`.
    """

    __slots__ = ("buffer", "served", "statuses")

    def __init__(self) -> None:
        self.buffer = b""
        self.served = 0
        self.statuses: list[int] = []

    def feed(self, data: bytes, responses: Responses, keep_alive: bool) -> tuple[bytes, bool]:
        """Consume ``data``; return the bytes to send and whether to close after sending them.

        Args:
            data: bytes just received (never empty: EOF is the caller's business).
            responses: the worker's preformatted responses.
            keep_alive: False when the worker wants this connection closed after the response
                (at capacity, or stopping), whatever the client asked.
        """
        buffer = self.buffer + data if self.buffer else data
        self.statuses.clear()
        out: list[bytes] = []
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD_BYTES:
                    return self._fail(out, 431)
                self.buffer = buffer
                return b"".join(out), False
            if end > MAX_HEAD_BYTES:
                return self._fail(out, 431)
            parsed = parse_head(buffer[:end])
            if isinstance(parsed, int):
                return self._fail(out, parsed)
            is_head, wants_keep_alive, length = parsed
            if length > MAX_BODY_BYTES:
                return self._fail(out, 413)
            consumed = end + 4 + length
            if consumed > len(buffer):  # the body is still arriving
                self.buffer = buffer
                return b"".join(out), False
            buffer = buffer[consumed:]
            keep = keep_alive and wants_keep_alive
            if keep:
                out.append(responses.head_keep_alive if is_head else responses.keep_alive)
            else:
                out.append(responses.head_close if is_head else responses.close)
            self.served += 1
            self.statuses.append(200)
            if not keep:
                self.buffer = b""
                return b"".join(out), True
            if not buffer:
                self.buffer = b""
                return b"".join(out), False

    def _fail(self, out: list[bytes], status: int) -> tuple[bytes, bool]:
        self.buffer = b""
        self.served += 1
        self.statuses.append(status)
        out.append(Responses.error(status))
        return b"".join(out), True


def parse_head(head: bytes) -> tuple[bool, bool, int] | int:
    """Parse a request head (without the final blank line).

    Returns:
        ``(is_head_method, client_wants_keep_alive, content_length)``, or the error status.
    """
    lines = head.lstrip(b"\r\n").split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1]:
        return 400
    method, _target, version = parts
    if version not in _VERSIONS:
        return 505 if version.startswith(b"HTTP/") else 400
    keep_alive = version == b"HTTP/1.1"
    length = 0
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name[-1:] in (b" ", b"\t") or line[:1] in (b" ", b"\t"):
            return 400  # RFC 9112: no whitespace before the colon, no obsolete line folding
        lowered = name.lower()
        if lowered == b"connection":
            tokens = value.lower()
            if b"close" in tokens:
                keep_alive = False
            elif b"keep-alive" in tokens:
                keep_alive = True
        elif lowered == b"content-length":
            value = value.strip()
            if not value.isdigit():
                return 400
            length = int(value)
        elif lowered == b"transfer-encoding":
            return 501
    return method == b"HEAD", keep_alive, length
