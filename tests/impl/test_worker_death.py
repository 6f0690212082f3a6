"""A worker that dies never takes queued connections with it, in any mode."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.impl.serverproc import MODES, Burst, Server, get, is_stopped, running, wait_until

pytestmark = pytest.mark.process


@pytest.mark.parametrize("mode", MODES)
def test_sigkill_of_a_stopped_worker_loses_no_queued_connection(tmp_path: Path, mode: str) -> None:
    with running(tmp_path, mode=mode, workers=2) as server:
        victim, _survivor = server.workers()
        os.kill(victim, signal.SIGSTOP)
        try:
            wait_until(lambda: is_stopped(victim), 5, "the victim to stop")
            burst = Burst(server.port, 40).start()
            wait_until(lambda: burst.sent == 40, 10, "40 clients to send their request")
        finally:
            os.kill(victim, signal.SIGKILL)
        burst.join(30)
        assert burst.failures == [], f"lost connections in {mode}"
        assert len(burst.replies) == 40
        wait_until(lambda: len(server.workers()) == 2, 5, "the slot to be respawned")
        if mode == "reuseport":  # the victim's own socket had a queue: the respawn drained it
            respawned = set(server.workers()) - {_survivor}
            assert any(reply.pid in respawned for reply in burst.replies)


def test_a_killed_mutex_holder_is_force_unlocked(tmp_path: Path) -> None:
    with running(tmp_path, mode="mutex", workers=2) as server:
        holder = _stop_the_mutex_holder(server.trace_path, server.workers())
        os.kill(holder, signal.SIGKILL)
        wait_until(
            lambda: _events(server.trace_path, "mutex_force_unlock") != [], 5, "a force unlock"
        )
        assert _events(server.trace_path, "mutex_force_unlock")[0]["holder"] == holder
        assert get(server.port).status == 200


def _events(trace: Path, name: str) -> list[dict[str, object]]:
    lines = trace.read_text().splitlines()
    return [event for event in map(json.loads, lines) if event["event"] == name]


def _stop_the_mutex_holder(trace: Path, workers: list[int]) -> int:
    """SIGSTOP workers in turn until the stopped one holds the mutex (by its last trace event)."""
    for attempt in range(200):
        pid = workers[attempt % len(workers)]
        os.kill(pid, signal.SIGSTOP)
        _wait_stopped(pid)
        lines = [json.loads(line) for line in trace.read_text().splitlines()]
        mine = [e["event"] for e in lines if e["pid"] == pid and "mutex" in str(e["event"])]
        if mine and mine[-1] == "mutex_acquire":
            return pid
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.003)  # let it run a little before the next attempt
    raise AssertionError("no worker was ever caught holding the mutex")


def test_a_slot_that_keeps_dying_young_is_respawned_with_a_growing_delay(tmp_path: Path) -> None:
    with running(tmp_path, workers=1) as server:
        born = float(str(_events(server.trace_path, "fork")[0]["ts"]))
        wait_until(lambda: time.monotonic() - born > 1.1, 5, "the first worker to be 1 s old")
        for _ in range(4):
            _kill_and_wait_for_the_respawn(server)
        reaps = [e["ts"] for e in _events(server.trace_path, "reap")]
        forks = [e["ts"] for e in _events(server.trace_path, "fork")][1:]
        delays = [
            float(str(fork)) - float(str(reap)) for reap, fork in zip(reaps, forks, strict=True)
        ]
        print(f"\nrespawn delays: {[round(delay, 2) for delay in delays]}")
        assert delays[0] < 0.1, "a worker that lived long is replaced at once"
        assert delays[1] >= 0.09, "a worker that died young waits BACKOFF_BASE"
        assert delays[1] < delays[2] < delays[3], "the back-off grows while it keeps dying young"


def test_the_pidfile_names_the_master_and_goes_away_with_it(tmp_path: Path) -> None:
    pidfile = tmp_path / "forkshare.pid"
    with running(tmp_path, extra=["--pidfile", str(pidfile)]) as server:
        assert pidfile.read_text().strip() == str(server.pid)
        server.signal(signal.SIGQUIT)
        assert server.process.wait(timeout=5) == 0
        assert not pidfile.exists()


def _kill_and_wait_for_the_respawn(server: Server) -> None:
    (worker,) = server.workers()
    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: server.workers() not in ([], [worker]), 10, "a respawn")


def _wait_stopped(pid: int) -> None:
    wait_until(lambda: is_stopped(pid), 5, f"{pid} to stop")
