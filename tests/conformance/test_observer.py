"""The observer against the tiny prefork server in every sharing mode: who holds which listening
socket, queue lengths, who accepted which client, wake-ups, orphans."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from forkshare.conformance.observe import procfs
from forkshare.conformance.observe.deadline import wait_until
from forkshare.conformance.observe.errors import NoSuchProcessError, NothingListensError
from forkshare.conformance.observe.launch import RunningTarget, free_port
from forkshare.conformance.observe.observer import ServerSnapshot, snapshot, who_accepted
from forkshare.conformance.observe.procfs import Endpoint
from forkshare.conformance.observe.role import Role

pytestmark = pytest.mark.process

StartTiny = Callable[[str, int], RunningTarget]  # the start_tiny fixture (conftest.py)


def connect(port: int) -> tuple[socket.socket, int]:
    """Connect and read the worker's pid from its greeting."""
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    return client, int(client.makefile().readline())


@contextmanager
def stopped(pids: list[int]) -> Iterator[None]:
    """SIGSTOP ``pids`` (the verifier's way to make the system hold still), SIGCONT at the end."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: all(_state(pid) == "T" for pid in pids), 5, "the workers are stopped")
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def _state(pid: int) -> str:
    stat = procfs.read_stat(pid)
    return stat.state if stat is not None else "gone"


def worker_pids(snap: ServerSnapshot) -> list[int]:
    return [p.pid for p in snap.with_role(Role.WORKER)]


def test_shared_socket_is_one_inode_held_by_the_master_and_every_worker(
    start_tiny: StartTiny,
) -> None:
    server = start_tiny("blocking", 2)
    snap = server.wait_for_workers(2)
    [listener] = snap.listeners
    assert listener.address == Endpoint("127.0.0.1", server.port)
    assert [p.role for p in snap.processes] == [Role.MASTER, Role.WORKER, Role.WORKER]
    assert snap.holders(listener.inode) == tuple(p.pid for p in snap.processes)  # K1, E1b
    assert {p.fds_on(listener.inode) for p in snap.processes} == {(3,)}  # fork keeps the number
    assert all(fd.cloexec for p in snap.processes for fd in p.listener_fds)  # Python's default


def test_root_and_port_views_of_one_server_agree(start_tiny: StartTiny) -> None:
    server = start_tiny("blocking", 2)
    by_port = server.wait_for_workers(2)
    by_root = snapshot(root_pid=server.group.pid)
    assert [p.pid for p in by_root.processes] == [p.pid for p in by_port.processes]
    assert by_root.listeners == by_port.listeners
    master = by_root.process(server.group.pid)
    assert master is not None
    assert master.role == Role.MASTER


def test_rx_queue_counts_connections_nobody_accepted_while_workers_are_stopped(
    start_tiny: StartTiny,
) -> None:
    server = start_tiny("blocking", 2)
    workers = worker_pids(server.wait_for_workers(2))
    with stopped(workers):
        clients = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
        try:
            snap = wait_until(
                lambda: _with_queue(server, 3), 5, "3 connections are in the accept queue"
            )
            assert {q.client for q in snap.queued} == {
                Endpoint(*c.getsockname()[:2]) for c in clients
            }  # K12: one inode-0 row per queued child
            assert all(q.in_accept_queue for q in snap.queued)
            assert all(p.connections == () for p in snap.processes)
        finally:
            for client in clients:
                client.close()


def _with_queue(server: RunningTarget, length: int) -> ServerSnapshot | None:
    snap = server.snapshot()
    return snap if snap.listeners[0].rx_queue == length else None


def test_who_accepted_names_the_worker_that_greeted_the_client(start_tiny: StartTiny) -> None:
    server = start_tiny("blocking", 2)
    server.wait_for_workers(2)
    first, first_pid = connect(server.port)
    second, second_pid = connect(server.port)
    with first, second:
        assert first_pid != second_pid  # each worker serves one connection at a time
        for client, pid in ((first, first_pid), (second, second_pid)):
            assert who_accepted(client.getsockname()[1], server_port=server.port) == pid
        snap = server.snapshot()
        assert [len(p.connections) for p in snap.processes] == [0, 1, 1]


def test_who_accepted_is_none_while_the_connection_is_queued(start_tiny: StartTiny) -> None:
    server = start_tiny("blocking", 1)
    [worker] = worker_pids(server.wait_for_workers(1))
    with stopped([worker]), socket.create_connection(("127.0.0.1", server.port)) as client:
        wait_until(lambda: _with_queue(server, 1), 5, "the connection is queued")
        assert who_accepted(client.getsockname()[1], server_port=server.port) is None


def test_reuseport_clones_opened_by_the_master_are_held_by_every_process(
    start_tiny: StartTiny,
) -> None:
    server = start_tiny("reuseport", 2)
    snap = server.wait_for_workers(2)
    groups = snap.reuseport_groups()
    [inodes] = groups.values()
    assert len(inodes) == 2  # K7: one socket per worker slot on one address
    for inode in inodes:
        assert snap.holders(inode) == tuple(p.pid for p in snap.processes)  # N1


def test_reuseport_queues_are_per_socket(start_tiny: StartTiny) -> None:
    server = start_tiny("reuseport", 2)
    workers = worker_pids(server.wait_for_workers(2))
    with stopped(workers):
        clients = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(8)]
        try:
            snap = wait_until(
                lambda: _total_queue(server, 8), 5, "8 connections are queued on the clones"
            )
            assert len(snap.listeners) == 2
            assert len(snap.queued) == 8
        finally:
            for client in clients:
                client.close()


def _total_queue(server: RunningTarget, length: int) -> ServerSnapshot | None:
    snap = server.snapshot()
    return snap if sum(s.rx_queue for s in snap.listeners) == length else None


def test_private_reuseport_sockets_belong_to_one_worker_each_and_not_the_master(
    start_tiny: StartTiny,
) -> None:
    server = start_tiny("reuseport-private", 2)
    snap = server.wait_for_workers(2)
    master = snap.process(server.group.pid)
    assert master is not None
    assert master.role == Role.MASTER
    assert master.listener_fds == ()
    held = [p.held_inodes for p in snap.with_role(Role.WORKER)]
    assert len(held) == 2
    assert all(len(h) == 1 for h in held)
    assert held[0] != held[1]


def test_passfd_workers_hold_connections_but_not_the_listener(start_tiny: StartTiny) -> None:
    server = start_tiny("passfd", 2)
    snap = server.wait_for_workers(2)
    [listener] = snap.listeners
    assert snap.holders(listener.inode) == (server.group.pid,)
    client, pid = connect(server.port)
    with client:
        assert pid != server.group.pid
        # J1: the master may still hold its copy for an instant; the acceptor is the leaf.
        assert who_accepted(client.getsockname()[1], server_port=server.port) == pid


@pytest.mark.parametrize(("mode", "woken"), [("blocking", 1), ("exclusive", 1), ("poll", 2)])
def test_voluntary_context_switches_count_the_workers_one_connection_wakes(
    start_tiny: StartTiny, mode: str, woken: int
) -> None:
    server = start_tiny(mode, 2)
    before = server.wait_for_workers(2)
    client, _ = connect(server.port)
    with client:
        if woken > 1:
            wait_until(lambda: len(_woken(before, server.snapshot())) == woken, 2, "the herd wakes")
        time.sleep(0.2)  # a quiet window: nothing else may wake (E3 keeps it ≤ 0.3 s)
        assert len(_woken(before, server.snapshot())) == woken  # E3: K3, K5 wake one; K4 all


def _woken(before: ServerSnapshot, after: ServerSnapshot) -> list[int]:
    counts = {p.pid: p.voluntary_switches for p in before.with_role(Role.WORKER)}
    return [
        p.pid
        for p in after.with_role(Role.WORKER)
        if p.voluntary_switches > counts.get(p.pid, p.voluntary_switches)
    ]


def test_workers_of_a_killed_master_are_orphans_that_keep_the_socket(
    start_tiny: StartTiny,
) -> None:
    server = start_tiny("blocking", 2)
    [listener] = server.wait_for_workers(2).listeners
    os.kill(server.group.pid, signal.SIGKILL)
    server.group.process.wait(5)  # reap it, so the kernel reparents the workers now

    def orphaned() -> ServerSnapshot | None:
        snap = server.snapshot()
        return snap if all(p.ppid != server.group.pid for p in snap.processes) else None

    snap = wait_until(orphaned, 5, "the workers are reparented")
    reaper = {p.ppid for p in snap.processes}  # pid 1, or the nearest child subreaper
    snap = snapshot(port=server.port, reapers=frozenset(reaper))
    assert [p.role for p in snap.processes] == [Role.ORPHAN, Role.ORPHAN]  # N3
    assert snap.listeners == (listener,)
    client, pid = connect(server.port)  # orphans keep serving (N3, B8)
    with client:
        assert pid in {p.pid for p in snap.processes}


def test_asking_for_a_pid_that_does_not_exist_is_a_usage_error() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    with pytest.raises(NoSuchProcessError, match=f"no process {pid}"):
        snapshot(root_pid=pid)


def test_asking_for_a_port_nobody_listens_on_is_a_usage_error() -> None:
    port = free_port()
    with pytest.raises(NothingListensError, match=f"nothing listens on TCP port {port}"):
        snapshot(port=port)


def test_a_process_without_listeners_is_a_usage_error() -> None:
    with pytest.raises(NothingListensError, match="hold no listening socket"):
        snapshot(root_pid=os.getpid())
