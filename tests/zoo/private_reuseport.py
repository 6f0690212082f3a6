"""private_reuseport — DEFECTIVE: each worker binds its own SO_REUSEPORT socket after fork.

Base: select_herd (HUP reload, TERM graceful stop, INT fast stop).

Defect (the only difference from the base): the master opens no listener; each worker, right
after fork, binds a private socket with SO_REUSEPORT on the port (gunicorn --reuse-port, B10,
G2). The kernel splits connections between the workers' queues by hash (K7); when a worker dies
its socket closes and the connections queued on it are reset (K8, tcp_migrate_req=0), and the
replacement binds a new socket. A reload loses the old generation's queues the same way.

Freedoms taken (DOMAIN §9): the base's — F2-late, F3-wait, F7-polling (F1 does not apply: the master holds no socket).

Caught as: no_queued_connection_lost (also listeners_keep_identity: a respawned worker's socket
is a new one).
"""

from __future__ import annotations

import os
import socket
import sys

if __package__ in (None, ""):  # run as a file: make ``tests.zoo`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.zoo.command_line import HOST
from tests.zoo.select_herd import BACKLOG, Master, Worker, main


class PrivateSocketWorker(Worker):
    """A select_herd worker that binds its own socket first."""

    def run(self) -> None:
        """The defect: bind a private SO_REUSEPORT socket, then serve as usual."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((HOST, self.port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
        self.listener = sock
        super().run()

    @property
    def port(self) -> int:
        """The service port (the master passes it in place of a socket)."""
        return int(os.environ["ZOO_PRIVATE_PORT"])


class NoListenerMaster(Master):
    """select_herd's master holding no socket: its workers bind their own."""

    WORKER = PrivateSocketWorker

    def open_listener(self) -> socket.socket | None:
        """No shared socket; the workers learn the port from the environment."""
        os.environ["ZOO_PRIVATE_PORT"] = str(self.arguments.port)
        return None


if __name__ == "__main__":
    main(NoListenerMaster, __doc__)
