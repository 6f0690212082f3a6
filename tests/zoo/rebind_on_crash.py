"""rebind_on_crash — DEFECTIVE: when a worker dies, the master "restarts the service socket".

Base: select_herd (HUP reload, TERM graceful stop, INT fast stop).

Defect (the only difference from the base): a worker's unexpected death makes the master close
its listener, stop every other worker at once, bind a new socket on the port (retrying
EADDRINUSE every 50 ms) and fork a whole new set of workers. The connections queued on the old
socket are reset, the port refuses connections while no socket listens, and the listening socket
changes identity.

Freedoms taken (DOMAIN §9): the base's — F1-late, F2-late, F3-wait, F7-polling.

Caught as: listeners_keep_identity (also no_queued_connection_lost when connections were queued,
port_keeps_listening when a client connects in the gap).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time

if __package__ in (None, ""):  # run as a file: make ``tests.zoo`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.zoo.select_herd import WORKER_FAST, Master, main

BIND_RETRY = 0.05
BIND_GIVE_UP = 30.0


class RestartingMaster(Master):
    """select_herd's master that rebuilds everything after a crash."""

    def on_child_exit(self, pid: int) -> None:
        """The defect: a crash restarts the socket and every worker."""
        generation, _slot = self.workers.pop(pid, (-1, -1))
        if generation == self.generation and not self.stopping:
            self.restart_service()

    def restart_service(self) -> None:
        """Close, stop the others, re-bind, fork a full generation."""
        assert self.listener is not None
        self.listener.close()
        survivors = list(self.workers)
        self.signal_workers(WORKER_FAST)
        self.signal_workers(signal.SIGCONT)
        for pid in survivors:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.workers.clear()
        self.listener = self.bind_again()
        for slot in range(self.arguments.workers):
            self.spawn(slot)

    def bind_again(self) -> socket.socket:
        """Retry the bind until the port is free (bounded)."""
        deadline = time.monotonic() + BIND_GIVE_UP
        while True:
            try:
                sock = self.open_listener()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(BIND_RETRY)
                continue
            assert sock is not None
            return sock


if __name__ == "__main__":
    main(RestartingMaster, __doc__)
