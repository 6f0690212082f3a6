"""stuck_shm_mutex — DEFECTIVE: an accept mutex in shared memory that nobody frees when its
holder dies.

Base: flock_mutex (USR1 reload, WINCH graceful stop, TERM fast stop).

Defect (the only difference from the base): the accept mutex is a lock word in an anonymous
shared mapping made by the master before fork (nginx's shmtx, §1.5): a worker takes it by writing
its pid into the word when the word is 0 (checked and written under a short flock() on a guard
file, the no-atomics way), and frees it by writing 0. A worker that exits normally frees it; a
worker killed while it holds the word leaves its pid there. nginx's master force-unlocks the dead
holder's pid when it reaps it (``ngx_shmtx_force_unlock``); this master does not, so nobody ever
accepts again (the respawned workers wait for the word too). A reload does not help either.

Freedoms taken (DOMAIN §9): the base's — F1-early, F2-early, F4-retire-first, F6, K19, F7-pipe-of-death, F10.

Caught as: mutex_holder_is_alive (timed face: mutex_recovers_after_holder_death).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import sys
import time

if __package__ in (None, ""):  # run as a file: make ``tests.zoo`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.zoo.flock_mutex import AcceptMutex, Master, main

POLL = 0.01  # how often a waiting worker looks at the word again
WORD = struct.Struct("q")


class SharedWordMutex:
    """A pid word in shared memory, compared and set under a short flock()."""

    def __init__(self, guard_path: str) -> None:
        self.word = mmap.mmap(-1, WORD.size)  # MAP_SHARED | MAP_ANONYMOUS: one page for all
        self.guard_path = guard_path
        self.guard = -1

    def open_in_child(self) -> None:
        """Each worker opens the guard file for itself (a private open file description)."""
        self.guard = os.open(self.guard_path, os.O_RDWR | os.O_CLOEXEC)

    def holder(self) -> int:
        """The pid in the word (0: free)."""
        value: int = WORD.unpack_from(self.word)[0]
        return value

    def try_acquire(self) -> bool:
        """Compare-and-set 0 → our pid, under the guard."""
        fcntl.flock(self.guard, fcntl.LOCK_EX)
        try:
            if self.holder() != 0:
                return False
            WORD.pack_into(self.word, 0, os.getpid())
            return True
        finally:
            fcntl.flock(self.guard, fcntl.LOCK_UN)

    def acquire(self) -> None:
        """Poll until the word is ours."""
        while not self.try_acquire():
            time.sleep(POLL)

    def release(self) -> None:
        """Compare-and-set our pid → 0 (a no-op when another process holds it)."""
        fcntl.flock(self.guard, fcntl.LOCK_EX)
        try:
            if self.holder() == os.getpid():
                WORD.pack_into(self.word, 0, 0)
        finally:
            fcntl.flock(self.guard, fcntl.LOCK_UN)


class SharedWordMaster(Master):
    """flock_mutex's master with the shared-memory mutex and no force-unlock."""

    def make_mutex(self) -> AcceptMutex:
        """The defect: a mutex only its holder can free, and no one frees it for a dead holder."""
        path = os.path.join(self.lock_dir, "guard.lock")
        with open(path, "w"):
            pass
        return SharedWordMutex(path)


if __name__ == "__main__":
    main(SharedWordMaster, __doc__)
