"""accepting_master — DEFECTIVE: the master accepts connections itself and drops them.

Base: select_herd (HUP reload, TERM graceful stop, INT fast stop).

Defect (the only difference from the base): the master "sheds load". It also watches the
listener, and when a connection has been waiting for SHED_AFTER seconds (every worker busy or
stopped) it accepts it and closes it without an answer. The client sees its connection closed
with no response although no worker died; /proc shows the connection's socket in the master.

Freedoms taken (DOMAIN §9): the base's — F1-late, F2-late, F3-wait, F7-polling.

Caught as: master_never_accepts.
"""

from __future__ import annotations

import os
import select
import sys
import time
from dataclasses import dataclass

if __package__ in (None, ""):  # run as a file: make ``tests.zoo`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.zoo.select_herd import MASTER_TICK, Master, main

SHED_AFTER = 0.5  # how long the queue must stay non-empty before the master steps in


@dataclass
class SheddingMaster(Master):
    """select_herd's master that accepts and drops connections that wait too long."""

    backed_up_since: float | None = None

    def wait_for_events(self) -> None:
        """The defect: the master's wait set includes the listener."""
        assert self.inbox is not None
        assert self.listener is not None
        waited = [self.inbox.read_end, self.listener.fileno()]
        readable, _, _ = select.select(waited, [], [], MASTER_TICK)
        if self.listener.fileno() not in readable:
            self.backed_up_since = None
            return
        now = time.monotonic()
        if self.backed_up_since is None:
            self.backed_up_since = now
        if now - self.backed_up_since < SHED_AFTER:
            select.select([self.inbox.read_end], [], [], 0.05)  # the queue is not stale yet
            return
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        conn.close()  # shed: no answer
        self.backed_up_since = None


if __name__ == "__main__":
    main(SheddingMaster, __doc__)
