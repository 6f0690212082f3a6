"""slow_respawn — DEFECTIVE: a dead worker is replaced only after 5 seconds.

Base: select_herd (its docstring gives the design, the freedoms and the signals: HUP reload,
TERM graceful stop, INT fast stop).

Defect (the only difference from the base): the master waits RESPAWN_DELAY = 5 s between reaping
a dead worker and forking its replacement ("a crash loop back-off" applied to every death). No
connection is lost — the master and the other workers keep the listener — but the server runs a
worker short for 5 s, longer than the 3 s bound (Apache's 1–2 s maintenance respawn is fine).

Freedoms taken (DOMAIN §9): the base's — F1-late, F2-late, F3-wait, F7-polling.

Caught as: dead_workers_are_replaced.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a file: make ``tests.zoo`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.zoo.select_herd import Master, main


class SlowRespawnMaster(Master):
    """select_herd's master with a 5 s respawn delay."""

    RESPAWN_DELAY = 5.0  # the defect


if __name__ == "__main__":
    main(SlowRespawnMaster, __doc__)
