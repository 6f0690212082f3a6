"""no_respawn — DEFECTIVE: a dead worker is never replaced.

Base: flock_mutex (its docstring gives the design, the freedoms and the signals: USR1 reload,
WINCH graceful stop, TERM fast stop).

Defect (the only difference from the base): the maintenance pass notices empty slots but never
forks into them (its refill step is missing). The master still holds the listener, so queued
connections wait; once every worker is dead nobody ever accepts them. A reload (which also fills
slots through the maintenance pass) leaves the server without workers too.

Freedoms taken (DOMAIN §9): the base's — F1-early, F2-early, F4-retire-first, F6, K19, F7-pipe-of-death, F10.

Caught as: dead_workers_are_replaced.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a file: make ``tests.zoo`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.zoo.flock_mutex import AcceptMutex, Master, main


class NoRespawnMaster(Master):
    """flock_mutex's master whose maintenance pass forgets to refill a slot."""

    def refill(self, slot: int, mutex: AcceptMutex) -> None:
        """The defect: nothing is forked."""


if __name__ == "__main__":
    main(NoRespawnMaster, __doc__)
