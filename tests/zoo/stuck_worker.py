"""stuck_worker — DEFECTIVE: one worker holds the listener but never accepts.

Base: select_herd (HUP reload, TERM graceful stop, INT fast stop).

Defect (the only difference from the base): the worker of slot 0 never puts the listener in its
wait set (it waits for a "warm-up finished" flag that nothing sets). It sleeps, holds the
listening socket, answers signals and notices its master's death, but never accepts: while the
other workers are busy or stopped, connections wait in the queue next to an idle worker.

Freedoms taken (DOMAIN §9): the base's — F1-late, F2-late, F3-wait, F7-polling.

Caught as: queued_connections_are_accepted.
"""

from __future__ import annotations

import os
import socket
import sys

if __package__ in (None, ""):  # run as a file: make ``tests.zoo`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.zoo.select_herd import Master, Worker, main


class MaybeStuckWorker(Worker):
    """A select_herd worker; the one in slot 0 never waits on the listener."""

    def watched(self) -> list[socket.socket]:
        """The defect: slot 0's warm-up never ends, so it never watches the listener."""
        return [] if self.slot == 0 else super().watched()


class StuckWorkerMaster(Master):
    """select_herd's master; slot 0 holds a worker that never accepts."""

    WORKER = MaybeStuckWorker


if __name__ == "__main__":
    main(StuckWorkerMaster, __doc__)
