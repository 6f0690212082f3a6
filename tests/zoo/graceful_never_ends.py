"""graceful_never_ends — DEFECTIVE: a graceful stop never finishes.

Base: select_herd (HUP reload, TERM graceful stop, INT fast stop).

Defect (the only difference from the base): a worker told to stop gracefully stops accepting and
closes its listener, then waits for its "open connections" to drain; its count includes the
listener it just closed, so it never reaches zero and the worker idles until its master dies.
The master waits for it forever: TERM never completes (INT still works). A reload leaves the old
generation idling too.

Freedoms taken (DOMAIN §9): the base's — F1-late, F3-wait, F7-polling; the worker closes its listener copy when told to stop (F2 early).

Caught as: graceful_stop_completes.
"""

from __future__ import annotations

import os
import sys
import time

if __package__ in (None, ""):  # run as a file: make ``tests.zoo`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.zoo.select_herd import PARENT_POLL, Master, Worker, main


class LingeringWorker(Worker):
    """A select_herd worker whose graceful exit waits for a drain that never happens."""

    def retire(self) -> None:
        """The defect: close the listener, then wait forever (only the master's death ends it)."""
        if self.listener is not None:
            self.listener.close()
        while self.master_is_alive():
            time.sleep(PARENT_POLL)


class LingeringMaster(Master):
    """select_herd's master with lingering workers."""

    WORKER = LingeringWorker


if __name__ == "__main__":
    main(LingeringMaster, __doc__)
