"""What a client sees: one connection to the target, classified in the model's words.

Two ways to be a client, one vocabulary, the model's
:class:`~forkshare.model.observation.Outcome` (observe imports nothing else of the model):

* :class:`Client` is the verifier's: it connects to 127.0.0.1:PORT (the handshake completes in the
  kernel, before any accept, K12), may send its request, may close, and is polled for its outcome
  without ever blocking, so one process can hold many while the target is stepped;
* :func:`probe` is the one-shot of ``forkshare trace``: connect, send, wait (bounded) for the first
  bytes, close.

Outcomes: bytes from the server after the whole request = ``served`` (a :class:`Client` also waits
for them to start with ``HTTP/`` or for the server to close after them); bytes before the request
is complete are no answer: a server may say why it closes (a 408, or gunicorn's error page on a
fast stop), and that connection is ``closed`` once the server closes it; ECONNRESET (or EPIPE, ECONNABORTED) = ``reset``
(K8: the queue it sat in was closed); EOF without a byte = ``closed``; ECONNREFUSED = ``refused``
(nothing listens); a connect that does not complete, or for :func:`probe` a first byte that does
not come, = ``timeout`` (a SYN dropped on a full queue, K14, or a queue nobody serves, B6/B7).
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from forkshare.conformance.observe.procfs import Endpoint
from forkshare.model.observation import Outcome

REQUEST = b"GET / HTTP/1.1\r\nHost: forkshare\r\nConnection: close\r\n\r\n"
CONNECT_TIMEOUT = 1.0
"""Seconds a :class:`Client` waits for its handshake before its outcome is ``timeout``."""

_RESETS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})


def _failed(error: OSError) -> str:
    """The outcome of a send or receive that failed with ``error``."""
    return Outcome.RESET if error.errno in _RESETS else Outcome.CLOSED


class Client:
    """One client connection, polled for its outcome (see the module docstring)."""

    def __init__(self, port: int) -> None:
        """Connect now; a refusal or a timeout is recorded, not raised."""
        self.sock: socket.socket | None = None
        self.local: Endpoint | None = None
        self.final: str | None = None
        self.received = b""
        self.requested = False
        """The client sent (or tried to send) the whole request: bytes are its answer."""
        self.sent = 0
        """Bytes of the request sent so far."""
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

    def begin_request(self) -> None:
        """Send the request but its final CRLF: a request in progress, which the server reads
        and waits to complete (not a silent connection it may close as unused)."""
        self._send_part(len(REQUEST) - 2)

    def send_request(self) -> None:
        """Send the (rest of the) request (a reset already received is kept for :meth:`outcome`)."""
        self.requested = True
        self._send_part(len(REQUEST))

    def _send_part(self, upto: int) -> None:
        if self.sock is None or upto <= self.sent:
            return
        try:
            self.sock.send(REQUEST[self.sent : upto])
        except OSError as error:
            self._finish(_failed(error))
            return
        self.sent = upto

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
                self._finish(_failed(error))
                break
            if not chunk:
                answered = self.received and self.requested
                self._finish(Outcome.SERVED if answered else Outcome.CLOSED)
                break
            self.received += chunk
        if self.final is None and self.requested and self.received.startswith(b"HTTP/"):
            return Outcome.SERVED
        return self.final or Outcome.PENDING

    def _finish(self, outcome: str) -> None:
        if self.final is None:
            self.final = outcome
        if self.sock is not None:
            self.sock.close()
            self.sock = None


@dataclass(frozen=True, slots=True)
class ClientResult:
    """One probe's outcome.

    Attributes:
        outcome: what the client saw, an :class:`~forkshare.model.observation.Outcome` value
            (never ``pending``: a probe waits for a verdict).
        local: the client's own address (the key for
            :func:`~forkshare.conformance.observe.observer.who_accepted`), None if it never
            connected.
        first_bytes: up to 4096 bytes of the response, empty otherwise.
    """

    outcome: str
    local: Endpoint | None
    first_bytes: bytes


def probe(
    port: int, *, host: str = "127.0.0.1", request: bytes = REQUEST, timeout: float = 2.0
) -> ClientResult:
    """Connect, send ``request`` and wait up to ``timeout`` seconds for the first bytes, then close.

    Never raises for network outcomes: they are the result.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    local: Endpoint | None = None
    try:
        sock.connect((host, port))
        local = Endpoint(*sock.getsockname()[:2])
        if request:
            sock.sendall(request)
        data = sock.recv(4096)
        return ClientResult(Outcome.SERVED if data else Outcome.CLOSED, local, data)
    except ConnectionRefusedError:
        return ClientResult(Outcome.REFUSED, local, b"")
    except (ConnectionResetError, BrokenPipeError):
        return ClientResult(Outcome.RESET, local, b"")
    except TimeoutError:
        return ClientResult(Outcome.TIMEOUT, local, b"")
    finally:
        sock.close()
