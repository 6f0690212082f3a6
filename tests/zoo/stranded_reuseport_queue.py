"""stranded_reuseport_queue — DEFECTIVE: after a reload, old SO_REUSEPORT sockets listen on with
nobody accepting from them.

Base: select_herd (HUP reload, TERM graceful stop, INT fast stop), with the per-slot
SO_REUSEPORT clones of lost_queue_on_reload (the master keeps every clone, so a crashed worker's
queue waits for its same-slot replacement, N1).

Defect (the only difference from that design): on HUP the master opens the new generation's
clones and forks the new workers *before* closing its copies of the old clones. The new workers
inherit the old clones and never close them (they accept only on their own), so the old sockets
stay in the SO_REUSEPORT group, listening, after the old workers have exited: the kernel keeps
hashing new connections to them (K7) and they wait there for ever (nginx/nginx#425, B7; nginx
ticket #2403, B6).

Freedoms taken (DOMAIN §9): the base's — F1-late, F2-late, F3-wait, F7-polling, F9-all.

Caught as: reuseport_queue_has_consumer.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a file: make ``tests.zoo`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.zoo.lost_queue_on_reload import CloneRenewingMaster
from tests.zoo.select_herd import Master, main


class StrandingMaster(CloneRenewingMaster):
    """Per-slot clones; the old ones are closed only after the new generation was forked."""

    def reload(self) -> None:
        """The defect: fork first (the new workers inherit the old clones), close after."""
        old_clones = self.clones
        self.clones = {}
        Master.reload(self)
        for sock in old_clones.values():
            sock.close()


if __name__ == "__main__":
    main(StrandingMaster, __doc__)
