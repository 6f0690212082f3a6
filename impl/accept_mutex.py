"""nginx's accept mutex: a word in shared memory holding the holder's pid, 0 when free.

The master creates it before forking (``ngx_event_module_init``); every worker maps the same page.
``try_lock`` is nginx's ``ngx_shmtx_trylock`` (``*lock == 0 && cmp_set(lock, 0, pid)``), ``unlock``
its ``cmp_set(lock, pid, 0)``, and the master calls :meth:`AcceptMutex.force_unlock` with the pid
of every child it reaps, like ``ngx_unlock_mutexes`` in ``ngx_process_get_status``: a holder that
dies (SIGKILL, crash) never wedges the server (property P2).

Discussion:
    *No compare-and-swap in Python.* The read-modify-write of ``try_lock`` and ``force_unlock`` is
    guarded by a non-blocking ``fcntl`` record lock on the same memfd (``lockf(F_TLOCK)``). The
    kernel releases a record lock when its owner dies, so a process killed in the middle of an
    update cannot wedge the guard (nginx's own no-atomics fallback, ``ngx_trylock_fd``). A guard
    that is busy counts as "not acquired", as a failed ``cmp_set`` does.

    *Unlock without the guard.* Only the holder writes its own pid back to 0: a guarded
    ``try_lock`` writes only after reading 0, and ``force_unlock`` only for a dead pid. A torn
    store (pid → 0 byte by byte) is never read as 0 before it completes, so the holder's unlock
    needs no guard, and cannot block behind a stopped process that holds the guard.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from typing import Final

_WORD: Final = struct.Struct("=q")


class AcceptMutex:
    """A pid word in a shared, close-on-exec memfd mapping; survives ``fork()``, not ``exec``."""

    def __init__(self) -> None:
        self._fd = os.memfd_create("forkshare-accept-mutex", os.MFD_CLOEXEC)
        os.ftruncate(self._fd, mmap.PAGESIZE)
        self._map = mmap.mmap(self._fd, mmap.PAGESIZE, mmap.MAP_SHARED)
        _WORD.pack_into(self._map, 0, 0)

    @property
    def holder(self) -> int:
        """The pid in the word, 0 when free (a plain read, as nginx's ``*lock == 0`` pre-check)."""
        value: int = _WORD.unpack_from(self._map, 0)[0]
        return value

    def try_lock(self, pid: int) -> bool:
        """Take the mutex for ``pid`` if it is free; never blocks."""
        if self.holder != 0:
            return False
        return self._compare_and_set(0, pid)

    def unlock(self, pid: int) -> bool:
        """Free the mutex if ``pid`` holds it; returns whether it did (see Discussion)."""
        if self.holder != pid:
            return False
        _WORD.pack_into(self._map, 0, 0)
        return True

    def force_unlock(self, pid: int) -> bool | None:
        """Free the mutex if the dead process ``pid`` holds it (``ngx_shmtx_force_unlock``).

        Returns:
            True if it was freed, False if ``pid`` did not hold it, None if the guard was busy and
            the caller must retry later.
        """
        if self.holder != pid:
            return False
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None
        try:
            if self.holder != pid:
                return False
            _WORD.pack_into(self._map, 0, 0)
            return True
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def _compare_and_set(self, old: int, new: int) -> bool:
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        try:
            if self.holder != old:
                return False
            _WORD.pack_into(self._map, 0, new)
            return True
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Unmap and close this process's descriptor (the other processes keep theirs)."""
        self._map.close()
        os.close(self._fd)
