"""rebind_on_reload — DEFECTIVE: a reload closes the listening socket and binds a new one.

Base: select_herd (HUP reload, TERM graceful stop, INT fast stop).

Defect (the only difference from the base): on HUP the master closes its listener, stops the old
generation gracefully, binds a fresh socket on the same port as soon as the old one is released
(retrying EADDRINUSE every 50 ms, like nginx's bind retries) and forks the new generation on it.
The listening socket changes identity; connections still queued on the old socket are reset when
the last old worker closes it; until the new bind succeeds, the port refuses connections.

Freedoms taken (DOMAIN §9): the base's — F1-late, F2-late, F3-wait, F7-polling.

Caught as: listeners_keep_identity (also no_queued_connection_lost when the old socket had a
queue, port_keeps_listening when a client connects in the gap).
"""

from __future__ import annotations

import os
import socket
import sys
import time

if __package__ in (None, ""):  # run as a file: make ``tests.zoo`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.zoo.select_herd import WORKER_GRACEFUL, Master, main

BIND_RETRY = 0.05
BIND_GIVE_UP = 30.0


class RebindingMaster(Master):
    """select_herd's master, re-binding on reload."""

    def reload(self) -> None:
        """The defect: a new socket for the new generation."""
        assert self.listener is not None
        old = list(self.workers)
        self.generation += 1
        self.pending_respawns.clear()
        self.listener.close()
        for pid in old:
            self.send(pid, WORKER_GRACEFUL)
        self.listener = self.bind_again()
        for slot in range(self.arguments.workers):
            self.spawn(slot)

    def bind_again(self) -> socket.socket:
        """Retry the bind until the old socket is gone (bounded)."""
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
    main(RebindingMaster, __doc__)
