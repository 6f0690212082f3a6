"""The accept mutex: exclusion, and recovery when its holder is killed."""

from __future__ import annotations

import os
import signal
import time

import pytest

from forkshare.impl.accept_mutex import AcceptMutex


def test_only_one_pid_holds_the_mutex() -> None:
    mutex = AcceptMutex()
    try:
        assert mutex.try_lock(100)
        assert not mutex.try_lock(200)
        assert not mutex.unlock(200)
        assert mutex.holder == 100
        assert mutex.unlock(100)
        assert mutex.try_lock(200)
    finally:
        mutex.close()


@pytest.mark.process
def test_a_killed_holder_is_force_unlocked_by_the_reaper() -> None:
    mutex = AcceptMutex()
    try:
        pid = os.fork()
        if pid == 0:
            try:
                mutex.try_lock(os.getpid())
                time.sleep(60)
            finally:
                os._exit(0)
        deadline = time.monotonic() + 5
        while mutex.holder != pid:
            assert time.monotonic() < deadline, "the child never took the mutex"
            time.sleep(0.01)
        assert not mutex.try_lock(os.getpid()), "held by the child"
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert mutex.force_unlock(pid) is True
        assert mutex.try_lock(os.getpid())
    finally:
        mutex.close()
