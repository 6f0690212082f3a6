"""Each sharing mode, seen from outside: who holds which socket, who accepts, who wakes up."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from tests.impl.serverproc import (
    MODES,
    get,
    listening_inodes,
    running,
    socket_inodes,
    voluntary_switches,
    wait_until,
)

pytestmark = pytest.mark.process

CONNECTIONS = 200
# Sequential connections from one client: the least share a worker gets in each mode.
LEAST_SHARE = {"blocking": 0.3, "exclusive": 0.15, "reuseport": 0.2, "passfd": 0.4}


@pytest.mark.parametrize("mode", MODES)
def test_listening_sockets_are_held_as_the_mode_says(tmp_path: Path, mode: str) -> None:
    with running(tmp_path, mode=mode, workers=3) as server:
        listening = listening_inodes(server.port)
        workers = server.workers()

        def holdings() -> dict[int, set[int]]:
            return {pid: socket_inodes(pid) & listening for pid in workers}

        assert socket_inodes(server.pid) & listening == listening, "the master holds them all"
        if mode == "reuseport":
            assert len(listening) == 3, "one SO_REUSEPORT socket per slot"
            wait_until(lambda: all(len(h) == 1 for h in holdings().values()), 5, "own clone only")
            assert set().union(*holdings().values()) == listening, "each slot has its own"
        elif mode == "passfd":
            assert len(listening) == 1
            wait_until(lambda: not any(holdings().values()), 5, "workers to hold no listener")
        else:
            assert len(listening) == 1, "one shared socket"
            assert all(h == listening for h in holdings().values()), "every worker holds it"


@pytest.mark.parametrize("mode", MODES)
def test_who_accepts_and_how_many_idle_workers_wake(tmp_path: Path, mode: str) -> None:
    with running(tmp_path, mode=mode, workers=2) as server:
        workers = server.workers()
        served: Counter[int] = Counter()
        woken_without_accepting = 0
        for _ in range(CONNECTIONS):
            before = {pid: voluntary_switches(pid) for pid in workers}
            reply = get(server.port)
            # A measurement window, not a wait for a condition: a herd loser that was woken
            # goes back to sleep (one more voluntary switch) within a few milliseconds.
            time.sleep(0.005)
            after = {pid: voluntary_switches(pid) for pid in workers}
            served[reply.pid] += 1
            woken_without_accepting += sum(
                1 for pid in workers if pid != reply.pid and after[pid] > before[pid]
            )
        shares = {pid: served[pid] / CONNECTIONS for pid in workers}
        extra = woken_without_accepting / CONNECTIONS
        print(f"\n{mode}: shares {sorted(shares.values())}, extra wake-ups/connection {extra:.2f}")
        assert set(served) <= set(workers)
        assert sum(served.values()) == CONNECTIONS
        if mode == "poll":
            assert extra > 0.5, "plain epoll wakes every idle worker (the herd)"
        else:
            assert extra < 0.25, f"{mode} must wake one worker per connection"
        if mode in LEAST_SHARE:
            assert min(shares.values()) >= LEAST_SHARE[mode], f"{mode} is fair: {shares}"
