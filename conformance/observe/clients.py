"""The verifier's own clients: real sockets whose fate is read without blocking.

A :class:`Client` connects to 127.0.0.1:PORT (the handshake completes in the kernel, before any
accept, K12), may send ``GET / HTTP/1.1`` with ``Connection: close``, may close, and reports its
outcome in the model's vocabulary (:class:`~forkshare.model.observation.Outcome`) each time it is
polled: bytes starting with ``HTTP/`` = served; ECONNRESET = reset; EOF without bytes = closed
by the server; ECONNREFUSED = refused; a connect that does not complete = timeout (SYN dropped).
"""

from __future__ import annotations

import errno
import socket

from forkshare.conformance.observe.procfs import Endpoint
from forkshare.model.observation import Outcome

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
CONNECT_TIMEOUT = 1.0


class Client:
    """One client connection (see the module docstring)."""

    def __init__(self, port: int) -> None:
        """Connect now; a refusal or a timeout is recorded, not raised."""
        self.sock: socket.socket | None = None
        self.local: Endpoint | None = None
        self.final: str | None = None
        self.received = b""
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT)
        except ConnectionRefusedError:
            self.final = Outcome.REFUSED
            return
        except TimeoutError:
            self.final = Outcome.TIMEOUT
            return
        sock.setblocking(False)
        host, local_port = sock.getsockname()[:2]
        self.sock, self.local = sock, Endpoint(host, local_port)

    def send_request(self) -> None:
        """Send the request (a reset already received is kept for :meth:`outcome`)."""
        if self.sock is None:
            return
        try:
            self.sock.send(REQUEST)
        except OSError as error:
            self._finish(Outcome.RESET if error.errno in _RESETS else Outcome.CLOSED)

    def close(self) -> None:
        """The client gives up: closed, whatever happened before."""
        self._finish(Outcome.CLOSED)

    def outcome(self) -> str:
        """What the client has seen so far (reads whatever arrived, never blocks)."""
        while self.final is None and self.sock is not None:
            try:
                chunk = self.sock.recv(4096)
            except BlockingIOError:
                break
            except OSError as error:
                self._finish(Outcome.RESET if error.errno in _RESETS else Outcome.CLOSED)
                break
            if not chunk:
                self._finish(Outcome.SERVED if self.received else Outcome.CLOSED)
                break
            self.received += chunk
        if self.final is None and self.received.startswith(b"HTTP/"):
            return Outcome.SERVED
        return self.final or Outcome.PENDING

    def _finish(self, outcome: str) -> None:
        if self.final is None:
            self.final = outcome
        if self.sock is not None:
            self.sock.close()
            self.sock = None


_RESETS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})
