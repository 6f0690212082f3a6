"""lost_queue_on_reload — DEFECTIVE: per-slot SO_REUSEPORT sockets renewed (and closed) on reload.

Base: select_herd (HUP reload, TERM graceful stop, INT fast stop).

Defect (the only difference from the base): instead of one shared socket, the master opens one
SO_REUSEPORT socket per worker slot (nginx-style clones, N1: the master keeps every clone, so a
crashed worker's queue waits for its same-slot replacement) — and on HUP it opens a new set of
clones for the new generation and closes the old set, while the old workers stop without
accepting what is queued on their clones. When the last old holder closes an old clone, the
connections queued on it are reset (K8, nginx commit f7f1607bf, B5, B11).

Freedoms taken (DOMAIN §9): the base's — F1-late, F2-late, F3-wait, F7-polling, F9-all.

Caught as: no_queued_connection_lost (also listeners_keep_identity: the reload changes the
sockets).
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, field

if __package__ in (None, ""):  # run as a file: make ``tests.zoo`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.zoo.command_line import HOST
from tests.zoo.select_herd import BACKLOG, Master, main


@dataclass
class CloneRenewingMaster(Master):
    """select_herd's master with per-slot reuseport clones, renewed on every reload."""

    clones: dict[int, socket.socket] = field(default_factory=dict)  # slot -> current clone

    def open_listener(self) -> socket.socket | None:
        """No shared socket: :meth:`listener_for` opens one clone per slot."""
        return None

    def listener_for(self, slot: int) -> socket.socket | None:
        """The slot's clone; opened on first use (so a respawn gets the same one)."""
        if slot not in self.clones:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((HOST, self.arguments.port))
            sock.listen(BACKLOG)
            sock.setblocking(False)
            self.clones[slot] = sock
        return self.clones[slot]

    def reload(self) -> None:
        """The defect: the master closes the old clones and opens new ones for the new
        generation (closing first, so that the new workers do not inherit the old clones)."""
        for sock in self.clones.values():
            sock.close()
        self.clones = {}
        super().reload()

    def close_listener(self) -> None:
        """Every clone, just before the master exits."""
        for sock in self.clones.values():
            sock.close()


if __name__ == "__main__":
    main(CloneRenewingMaster, __doc__)
