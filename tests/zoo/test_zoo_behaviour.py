"""The zoo's servers behave as designed: each correct one keeps every property, each defective one
shows its one defect. Everything here runs the real scripts and looks at them from outside
(/proc, /proc/net/tcp, clients), the way the verifier will.

These tests are about the zoo itself (that a "correct" server really is correct and that a
"defective" one really has its defect), so the verifier's verdicts on them mean something.
"""

from __future__ import annotations

import os
import signal
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.zoo.observed_server import (
    ZOO,
    Client,
    ZooServer,
    accepted_by,
    clients,
    is_alive,
    is_refusing,
    listening_inodes,
    outcomes,
    parent_of,
    queued,
    session_of,
    socket_inodes,
    state_of,
    wait_until,
)

pytestmark = [pytest.mark.process, pytest.mark.timeout(60)]

Start = Callable[..., ZooServer]


@dataclass(frozen=True, slots=True)
class Signals:
    """Which signal is reload, graceful stop and fast stop (as in manifest.toml)."""

    reload: int
    graceful: int
    fast: int


CORRECT = {
    "select_herd": Signals(signal.SIGHUP, signal.SIGTERM, signal.SIGINT),
    "flock_mutex": Signals(signal.SIGUSR1, signal.SIGWINCH, signal.SIGTERM),
    "reexec_master": Signals(signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM),
    "scm_rights": Signals(signal.SIGHUP, signal.SIGTERM, signal.SIGINT),
}
SELECT_HERD = CORRECT["select_herd"]
HEAD_WITHOUT_END = b"GET / HTTP/1.1\r\nHost: zoo\r\n"


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start a zoo server by name; teardown kills its group and any leaked holder."""
    started: list[ZooServer] = []

    def start_server(name: str, workers: int = 2) -> ZooServer:
        server = ZooServer(name, workers)
        started.append(server)
        return server.start(tmp_path)

    yield start_server
    for server in started:
        server.kill()


def stop(pids: list[int]) -> None:
    """SIGSTOP each pid and wait until it is really stopped (the signal is asynchronous)."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    assert wait_until(lambda: all(state_of(pid) == "T" for pid in pids), 2.0)


def resume(pids: list[int]) -> None:
    """SIGCONT each pid that still exists."""
    for pid in pids:
        if is_alive(pid):
            os.kill(pid, signal.SIGCONT)


def queue_clients(server: ZooServer, count: int) -> list[Client]:
    """``count`` clients with full requests, waiting in the accept queue(s)."""
    made = clients(server.port, count)
    assert wait_until(lambda: queued(server.port) == count, 2.0), "the clients were not queued"
    return made


def replaced(server: ZooServer, dead: int) -> Callable[[], bool]:
    """A condition: the server again has its workers, and ``dead`` is not one of them."""
    return lambda: dead not in server.workers() and len(server.workers()) == server.workers_wanted


def client_in_hand(server: ZooServer) -> Client:
    """A client whose connection a worker has accepted while its request is still incomplete."""
    client = Client(server.port).connect().send(HEAD_WITHOUT_END)
    in_hand = wait_until(lambda: any(accepted_by(p, server.port) for p in server.workers()), 2.0)
    assert in_hand, "no worker accepted the client"
    return client


# -- the correct servers ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_server_keeps_a_killed_workers_queue_and_replaces_it_within_3_s(
    start: Start, name: str
) -> None:
    server = start(name)
    before = listening_inodes(server.port)
    workers = server.workers()
    stop(workers)
    waiting = queue_clients(server, 4)
    os.kill(workers[0], signal.SIGKILL)
    resume(workers[1:])
    assert wait_until(replaced(server, workers[0]), 3.0), "the dead worker was not replaced"
    assert outcomes(waiting, timeout=4.0) == ["served"] * 4
    assert listening_inodes(server.port) == before


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_server_reload_keeps_the_listener_and_its_queue(start: Start, name: str) -> None:
    server = start(name)
    before = listening_inodes(server.port)
    old = server.workers()
    stop(old)
    waiting = queue_clients(server, 3)
    server.signal(CORRECT[name].reload)
    time.sleep(0.3)
    resume(old)
    assert outcomes(waiting, timeout=5.0) == ["served"] * 3
    new_generation = lambda: len(server.workers()) == 2 and not set(old) & set(server.workers())  # noqa: E731
    assert wait_until(new_generation, 4.0), "the old generation is still there"
    assert listening_inodes(server.port) == before


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_server_answers_the_request_in_hand_on_graceful_stop_then_releases_the_port(
    start: Start, name: str
) -> None:
    server = start(name)
    client = client_in_hand(server)
    server.signal(CORRECT[name].graceful)
    time.sleep(0.3)
    client.send(b"\r\n")
    assert client.outcome() == "served"
    assert wait_until(server.is_gone, 5.0), "the graceful stop did not end"
    assert is_refusing(server.port)


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_server_workers_exit_within_a_second_of_the_masters_death(
    start: Start, name: str
) -> None:
    server = start(name)
    workers = server.workers()
    os.kill(server.master, signal.SIGKILL)
    assert wait_until(lambda: not any(is_alive(pid) for pid in workers), 1.0), "orphans remain"
    assert is_refusing(server.port)


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_server_fast_stop_ends_every_process_even_a_stopped_worker(
    start: Start, name: str
) -> None:
    server = start(name)
    stop(server.workers()[:1])
    server.signal(CORRECT[name].fast)
    assert wait_until(server.is_gone, 3.0), "the fast stop left processes"
    assert is_refusing(server.port)


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_server_master_never_accepts_while_every_worker_is_stopped(
    start: Start, name: str
) -> None:
    server = start(name)
    workers = server.workers()
    stop(workers)
    waiting = queue_clients(server, 2)
    time.sleep(1.5)
    assert queued(server.port) == 2
    assert not accepted_by(server.master, server.port)
    resume(workers)
    assert outcomes(waiting) == ["served"] * 2


def test_flock_mutex_keeps_a_silent_client_out_of_the_accept_queue(start: Start) -> None:
    server = start("flock_mutex")
    silent = Client(server.port).connect()
    time.sleep(0.5)
    assert queued(server.port) == 0  # TCP_DEFER_ACCEPT (K19): no data, not queued
    silent.send()
    assert silent.outcome() == "served"


def test_scm_rights_workers_got_the_listener_after_fork_not_by_inheritance(start: Start) -> None:
    server = start("scm_rights")
    (inode,) = listening_inodes(server.port)
    for worker in server.workers():
        # The inherited copy was closed at once; the one received is the same socket (K16).
        assert inode in socket_inodes(worker)


def test_reexec_master_keeps_its_pid_and_listener_across_a_reload(start: Start) -> None:
    server = start("reexec_master")
    before = listening_inodes(server.port)
    cmdline_before = Path(f"/proc/{server.master}/cmdline").read_bytes()
    old = server.workers()
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: not set(old) & set(server.workers()), 4.0)
    assert wait_until(lambda: len(server.workers()) == 2, 2.0)
    assert is_alive(server.master)
    assert Path(f"/proc/{server.master}/cmdline").read_bytes() == cmdline_before
    assert listening_inodes(server.port) == before


# -- the defective servers ----------------------------------------------------------------------


def test_slow_respawn_replaces_a_killed_worker_after_5_s_not_within_3_s(start: Start) -> None:
    server = start("slow_respawn")
    dead = server.workers()[0]
    os.kill(dead, signal.SIGKILL)
    assert not wait_until(replaced(server, dead), 3.0)
    assert wait_until(replaced(server, dead), 4.0)


def test_no_respawn_never_replaces_a_killed_worker(start: Start) -> None:
    server = start("no_respawn")
    dead = server.workers()[0]
    os.kill(dead, signal.SIGKILL)
    assert not wait_until(replaced(server, dead), 3.5)
    assert len(server.workers()) == 1


def test_stuck_shm_mutex_never_accepts_again_after_its_holder_is_killed(start: Start) -> None:
    server = start("stuck_shm_mutex")
    workers = server.workers()
    for pid in workers:  # one of them holds the word: it dies holding it
        os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: len(server.workers()) == 2, 3.0)  # respawned (F10)...
    waiting = clients(server.port, 1)
    assert waiting[0].outcome(timeout=2.0) == "pending"  # ...but nobody takes the mutex
    assert queued(server.port) == 1


def test_flock_mutex_accepts_again_after_every_worker_is_killed(start: Start) -> None:
    server = start("flock_mutex")
    for pid in server.workers():
        os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: len(server.workers()) == 2, 3.0)
    assert outcomes(clients(server.port, 1)) == ["served"]


def test_accepting_master_accepts_and_drops_a_connection_while_its_workers_are_stopped(
    start: Start,
) -> None:
    server = start("accepting_master")
    workers = server.workers()
    stop(workers)
    waiting = queue_clients(server, 1)
    assert waiting[0].outcome(timeout=3.0) in {"closed", "reset"}  # RST: its request was unread
    assert all(state_of(pid) == "T" for pid in workers)  # no worker could have taken it


def test_rebind_on_reload_changes_the_listener_and_resets_its_queue(start: Start) -> None:
    server = start("rebind_on_reload")
    before = listening_inodes(server.port)
    old = server.workers()
    stop(old)
    waiting = queue_clients(server, 2)
    server.signal(SELECT_HERD.reload)
    time.sleep(0.3)
    resume(old)
    assert wait_until(
        lambda: len(server.workers()) == 2 and not set(old) & set(server.workers()), 4.0
    )
    assert listening_inodes(server.port).isdisjoint(before)
    assert "served" not in outcomes(waiting)


def test_rebind_on_crash_changes_the_listener_and_resets_the_queue_when_a_worker_dies(
    start: Start,
) -> None:
    server = start("rebind_on_crash")
    before = listening_inodes(server.port)
    workers = server.workers()
    stop(workers)
    waiting = queue_clients(server, 3)
    os.kill(workers[0], signal.SIGKILL)
    assert wait_until(lambda: len(server.workers()) == 2, 3.0)
    assert listening_inodes(server.port).isdisjoint(before)
    assert "served" not in outcomes(waiting)


def test_orphan_workers_keep_serving_after_the_masters_death(start: Start) -> None:
    server = start("orphan_workers")
    workers = server.workers()
    os.kill(server.master, signal.SIGKILL)
    time.sleep(2.0)
    assert all(is_alive(pid) for pid in workers)
    assert Client(server.port).connect().send().served_by() in workers


def test_graceful_drops_closes_the_request_in_hand_on_graceful_stop(start: Start) -> None:
    server = start("graceful_drops")
    client = client_in_hand(server)
    server.signal(signal.SIGQUIT)
    time.sleep(0.3)
    client.send(b"\r\n")
    assert client.outcome() in {"closed", "reset"}


def test_private_reuseport_master_holds_no_listener_and_a_dead_workers_queue_is_reset(
    start: Start,
) -> None:
    server = start("private_reuseport")
    workers = server.workers()
    assert len(listening_inodes(server.port)) == 2
    assert not socket_inodes(server.master) & listening_inodes(server.port)
    stop(workers)
    waiting = queue_clients(server, 16)  # split by hash over the two private queues (K7)
    os.kill(workers[0], signal.SIGKILL)
    resume(workers[1:])
    results = outcomes(waiting)
    assert "reset" in results, results


def test_leaky_helper_holds_the_listener_outside_the_servers_process_tree(start: Start) -> None:
    server = start("leaky_helper")
    inodes = listening_inodes(server.port)
    tree = {server.master, *server.workers()}
    leaked = server.listener_holders() - tree
    assert len(leaked) == 1
    (helper,) = leaked
    assert parent_of(helper) != server.master
    assert session_of(helper) != session_of(server.master)
    server.signal(SELECT_HERD.fast)
    assert wait_until(lambda: server.process is not None and server.process.poll() is not None, 3.0)
    assert socket_inodes(helper) & inodes  # still held after the shutdown
    assert not is_refusing(server.port)


def test_graceful_never_ends_keeps_master_and_workers_after_a_graceful_stop(start: Start) -> None:
    server = start("graceful_never_ends")
    workers = server.workers()
    server.signal(SELECT_HERD.graceful)
    time.sleep(3.0)
    assert is_alive(server.master)
    assert all(is_alive(pid) for pid in workers)
    server.signal(SELECT_HERD.fast)
    assert wait_until(server.is_gone, 3.0)


def test_stuck_worker_leaves_a_connection_queued_next_to_an_idle_worker(start: Start) -> None:
    server = start("stuck_worker")
    serving = Client(server.port).connect().send().served_by()
    (stuck,) = set(server.workers()) - {serving}
    stop([serving])
    waiting = queue_clients(server, 1)
    time.sleep(1.5)
    assert queued(server.port) == 1
    assert state_of(stuck) == "S"  # idle, running, holding the listener
    resume([serving])
    assert waiting[0].outcome() == "served"


def test_lost_queue_on_reload_resets_the_old_clones_queues(start: Start) -> None:
    server = start("lost_queue_on_reload")
    before = listening_inodes(server.port)
    old = server.workers()
    stop(old)
    waiting = queue_clients(server, 6)
    server.signal(SELECT_HERD.reload)
    time.sleep(0.3)
    resume(old)
    results = outcomes(waiting)
    assert "reset" in results, results
    assert listening_inodes(server.port).isdisjoint(before)


def test_lost_queue_on_reload_keeps_a_crashed_workers_queue(start: Start) -> None:
    server = start("lost_queue_on_reload")
    workers = server.workers()
    stop(workers)
    waiting = queue_clients(server, 6)
    os.kill(workers[0], signal.SIGKILL)
    resume(workers[1:])
    assert outcomes(waiting, timeout=4.0) == ["served"] * 6  # only the reload loses queues


def test_fast_stop_leaves_workers_serving_after_the_master_exited(start: Start) -> None:
    server = start("fast_stop_leaves_workers")
    workers = server.workers()
    server.signal(signal.SIGINT)
    assert wait_until(lambda: server.process is not None and server.process.poll() is not None, 2.0)
    time.sleep(1.5)
    assert all(is_alive(pid) for pid in workers)
    assert Client(server.port).connect().send().served_by() in workers


def test_stranded_reuseport_queue_leaves_old_sockets_listening_without_a_consumer(
    start: Start,
) -> None:
    server = start("stranded_reuseport_queue")
    old = server.workers()
    old_clones = listening_inodes(server.port)
    server.signal(SELECT_HERD.reload)
    assert wait_until(lambda: not any(is_alive(pid) for pid in old), 4.0)
    assert old_clones <= listening_inodes(server.port)  # still listening, nobody's own
    waiting = clients(server.port, 16)  # hashed over four sockets, two of them stranded (K7)
    assert "pending" in outcomes(waiting, timeout=0.5)


def test_the_manifest_lists_every_zoo_server_with_its_verdict() -> None:
    manifest = tomllib.loads((ZOO / "manifest.toml").read_text())
    servers = {path.stem for path in ZOO.glob("*.py") if "\nif __name__ ==" in path.read_text()}
    assert set(manifest) == servers
    assert {name for name, entry in manifest.items() if entry["correct"]} == set(CORRECT)
    for name, entry in manifest.items():
        assert entry["correct"] or entry["property"], name
        expected = f"{{python}} {{dir}}/{name}.py --port {{port}} --workers {{workers}}"
        assert entry["command"] == expected
