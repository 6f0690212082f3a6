"""What a client saw: one connection to the target, classified the way the model classifies it.

:func:`probe` connects to ``host:port``, sends a request and waits (bounded) for the first bytes.
The outcome is one of :class:`ClientOutcome`: a response, a reset (K8: the queue it sat in was
closed), refused (nothing listens), a timeout (a SYN dropped on a full queue, K14, or a queue
nobody serves, B6/B7), or closed without a byte.
"""

from __future__ import annotations

import enum
import socket
from dataclasses import dataclass

from forkshare.conformance.observe.procfs import Endpoint

HTTP_REQUEST = b"GET / HTTP/1.0\r\nHost: forkshare\r\n\r\n"


class ClientOutcome(enum.StrEnum):
    """What one client connection experienced."""

    RESPONSE = "response"
    RESET = "reset"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ClientResult:
    """One probe's outcome.

    Attributes:
        outcome: what the client saw.
        local: the client's own address (the key for
            :func:`~forkshare.conformance.observe.observer.who_accepted`), None if it never connected.
        first_bytes: up to 4096 bytes of the response, empty otherwise.
    """

    outcome: ClientOutcome
    local: Endpoint | None
    first_bytes: bytes


def probe(
    port: int, *, host: str = "127.0.0.1", request: bytes = HTTP_REQUEST, timeout: float = 2.0
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
        return ClientResult(ClientOutcome.RESPONSE if data else ClientOutcome.CLOSED, local, data)
    except ConnectionRefusedError:
        return ClientResult(ClientOutcome.REFUSED, local, b"")
    except (ConnectionResetError, BrokenPipeError):
        return ClientResult(ClientOutcome.RESET, local, b"")
    except TimeoutError:
        return ClientResult(ClientOutcome.TIMEOUT, local, b"")
    finally:
        sock.close()
