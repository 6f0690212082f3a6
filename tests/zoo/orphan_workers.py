"""orphan_workers — DEFECTIVE: workers never notice that their master died, and keep serving.

Base: select_herd (HUP reload, TERM graceful stop, INT fast stop).

Defect (the only difference from the base): the worker's parent check always says the master is
alive (the getppid() poll of F7 is gone). After a SIGKILL of the master, its workers are
re-parented and keep accepting on the listener forever (nginx's behaviour, N3, but this server
claims the default workers-exit policy); a new master cannot bind the port.

Freedoms taken (DOMAIN §9): the base's — F1-late, F2-late, F3-wait (not F7: the defect).

Caught as: orphans_exit_with_master (timed face: orphans_exit_within_bound).
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a file: make ``tests.zoo`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.zoo.select_herd import Master, Worker, main


class OrphanWorker(Worker):
    """A select_herd worker without a parent check."""

    def master_is_alive(self) -> bool:
        """The defect: never looks."""
        return True


class OrphaningMaster(Master):
    """select_herd's master, forking orphan-prone workers."""

    WORKER = OrphanWorker


if __name__ == "__main__":
    main(OrphaningMaster, __doc__)
