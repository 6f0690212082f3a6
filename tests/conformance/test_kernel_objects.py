"""The picture of what is shared, on real processes: a listener forked in the test, and the
reference server in three modes. The counts are the claim: N descriptors, one open file
description, one socket, one queue when shared; one socket and one queue per slot with reuseport;
only the master's descriptor with passfd."""

from __future__ import annotations

import contextlib
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from forkshare.conformance.observe import socket_probe
from forkshare.conformance.observe.deadline import wait_until
from forkshare.conformance.observe.kernel_objects import KernelObjects, kernel_objects
from forkshare.conformance.observe.kernel_picture import JAPANESE, render_lines, summary, to_dot
from forkshare.conformance.observe.launch import RunningTarget, free_port, launch
from forkshare.conformance.observe.observer import snapshot
from forkshare.conformance.observe.role import Role
from forkshare.conformance.observe.socket_probe import read_socket, same_open_file

pytestmark = pytest.mark.process

BACKLOG = 7
DEFER_SECONDS = 3  # on the kernel's schedule (1, 3, 7, 15 … s), so read back unchanged
StartReference = Callable[[str, int], RunningTarget]


@contextmanager
def forked_listener(workers: int) -> Iterator[tuple[int, int]]:
    """A master process (a child of the test) that opens a listener with SO_REUSEADDR,
    TCP_DEFER_ACCEPT and O_NONBLOCK, then forks ``workers`` children; the last child clears
    FD_CLOEXEC on its own copy only (K2). Yields (master pid, port); kills them all at the end."""
    port = free_port()
    ready_read, ready_write = os.pipe()
    master = os.fork()
    if master == 0:
        try:
            os.close(ready_read)
            _be_master(port, workers, ready_write)
        finally:
            os._exit(0)  # never return into pytest
    os.close(ready_write)
    try:
        _wait_for_bytes(ready_read, workers, timeout=5.0)
        yield master, port
    finally:
        os.close(ready_read)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(master, 9)
        with contextlib.suppress(ProcessLookupError):
            os.kill(master, 9)
        os.waitpid(master, 0)


def _wait_for_bytes(fd: int, count: int, timeout: float) -> None:
    """Read ``count`` bytes from ``fd``, each within ``timeout`` seconds, or fail the test."""
    for _ in range(count):
        readable, _, _ = select.select([fd], [], [], timeout)
        assert readable, "a forked worker did not start"
        assert os.read(fd, 1) == b"w", "a forked worker did not start"


def _be_master(port: int, workers: int, ready: int) -> None:
    os.setpgid(0, 0)  # one group for the master and its workers: killed together
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, DEFER_SECONDS)
    listener.bind(("127.0.0.1", port))
    listener.listen(BACKLOG)
    listener.setblocking(False)
    for number in range(workers):
        if os.fork() == 0:
            if number == workers - 1:
                os.set_inheritable(listener.fileno(), True)
            os.write(ready, b"w")
            _sleep_until_killed()
    _sleep_until_killed()


def _sleep_until_killed() -> None:
    while True:
        signal.pause()


def objects_of(root: int, port: int) -> KernelObjects:
    return kernel_objects(snapshot(root_pid=root, port=port))


def test_forked_descriptors_share_one_open_file_description_and_one_socket() -> None:
    with forked_listener(workers=2) as (master, port):
        objects = objects_of(master, port)
    assert len(objects.descriptors) == 3
    [description] = objects.descriptions
    assert description.reference_count == 3
    assert description.compared  # kcmp said so, not an inference
    assert description.nonblocking  # set once by the master, seen through every holder
    [sock] = objects.sockets
    assert (sock.reuseaddr, sock.reuseport, sock.defer_accept) == (True, False, DEFER_SECONDS)
    assert sock.unknown_because is None
    [queue] = objects.queues
    assert (queue.length, queue.max_backlog) == (0, BACKLOG)
    assert summary(objects) == "3 descriptors → 1 open file description → 1 socket → 1 accept queue"


def test_fd_cloexec_is_drawn_per_descriptor() -> None:
    with forked_listener(workers=2) as (master, port):
        objects = objects_of(master, port)
    flags = [d.cloexec for d in objects.descriptors]
    assert flags == [True, True, False]  # by pid: master, worker, the worker that cleared it


def test_the_accept_queue_counts_connections_nobody_accepted() -> None:
    with forked_listener(workers=1) as (master, port):
        clients = [socket.create_connection(("127.0.0.1", port), timeout=2) for _ in range(2)]
        for client in clients:  # TCP_DEFER_ACCEPT queues a connection once its data arrives
            client.sendall(b"x")
        try:
            wait_until(lambda: objects_of(master, port).queues[0].length == 2, 5, "2 queued")
        finally:
            for client in clients:
                client.close()


def test_kcmp_tells_one_open_file_description_from_another() -> None:
    with forked_listener(workers=1) as (master, port):
        snap = snapshot(root_pid=master, port=port)
        worker = snap.with_role(Role.WORKER)[0].pid
        fd = snap.processes[0].listener_fds[0].fd
        with socket.socket() as other:
            assert same_open_file((master, fd), (worker, fd)) is True
            assert same_open_file((master, fd), (os.getpid(), other.fileno())) is False


def test_when_kcmp_is_refused_the_sharing_is_inferred_from_the_socket_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The refusal cannot be produced here (root may kcmp anything; Yama is not loaded), so it is
    # simulated: the one stand-in in this file.
    monkeypatch.setattr(socket_probe, "same_open_file", lambda first, second: None)
    with forked_listener(workers=2) as (master, port):
        objects = objects_of(master, port)
    [description] = objects.descriptions
    assert (description.reference_count, description.compared) == (3, False)
    assert "(one per socket; kcmp not permitted)" in "\n".join(render_lines(objects))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another uid")
def test_without_ptrace_permission_the_options_are_unknown_not_guessed() -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    with forked_listener(workers=1) as (master, port):
        fd = snapshot(root_pid=master, port=port).processes[0].listener_fds[0].fd
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:
            try:
                os.setuid(nobody)
                reading = read_socket(master, fd)
                same = same_open_file((master, fd), (master, fd))
                os.write(
                    write_end, f"{reading.unknown_because}|{reading.reuseaddr}|{same}".encode()
                )
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as answer:
            reason, reuseaddr_text, same_text = answer.read().decode().split("|")
        os.waitpid(child, 0)
    assert "EPERM" in reason
    assert (reuseaddr_text, same_text) == ("None", "None")


# ---------------------------------------------------------------- the reference server


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[StartReference]:
    """Start ``forkshare serve`` in a mode with N workers on a free port; waits until they idle."""
    started: list[RunningTarget] = []

    def start(mode: str, workers: int) -> RunningTarget:
        port = free_port()
        argv = [sys.executable, "-m", "forkshare.impl", "--listen", f"127.0.0.1:{port}"]
        argv += ["--workers", str(workers), "--mode", mode]
        target = launch(argv, port, output_dir=tmp_path)
        started.append(target)
        target.wait_for_workers(workers)
        return target

    yield start
    for target in started:
        target.group.stop(grace=1.0)


def test_exclusive_with_three_workers_is_four_descriptors_on_one_of_each(
    reference: StartReference,
) -> None:
    objects = kernel_objects(reference("exclusive", 3).snapshot())
    assert len(objects.descriptors) == 4
    [description] = objects.descriptions
    assert (description.reference_count, description.compared) == (4, True)
    assert len(objects.sockets) == len(objects.queues) == 1
    assert objects.sockets[0].reuseaddr is True
    assert objects.sockets[0].reuseport is False
    exclusive = [d for d in objects.descriptors if any(e & 0x10000000 for e in d.epoll_events)]
    assert len(exclusive) == 3  # the workers registered with EPOLLEXCLUSIVE, the master did not
    lines = render_lines(objects)
    assert lines[0] == "4 descriptors → 1 open file description → 1 socket → 1 accept queue"
    assert any("reference count 4" in line for line in lines)


def test_reuseport_has_one_socket_and_one_queue_per_slot(reference: StartReference) -> None:
    objects = kernel_objects(reference("reuseport", 2).snapshot())
    assert len(objects.sockets) == len(objects.queues) == len(objects.descriptions) == 2
    assert {s.address for s in objects.sockets} == {objects.sockets[0].address}
    assert all(s.reuseport for s in objects.sockets)
    # The master keeps every slot's socket, each worker its own (nginx's ngx_clone_listening).
    assert [d.reference_count for d in objects.descriptions] == [2, 2]
    master = next(p.pid for p in objects.processes if p.role == Role.MASTER)
    assert sum(d.pid == master for d in objects.descriptors) == 2


def test_passfd_shows_only_the_masters_descriptor(reference: StartReference) -> None:
    objects = kernel_objects(reference("passfd", 2).snapshot())
    [descriptor] = objects.descriptors
    assert objects.process(descriptor.pid).role == Role.MASTER
    assert len(objects.processes) == 3
    lines = render_lines(objects, JAPANESE)
    assert "リスニングソケットのディスクリプタを持たない" in lines[-1]


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz is not installed")
def test_the_dot_picture_is_valid_graphviz_with_every_object(reference: StartReference) -> None:
    objects = kernel_objects(reference("exclusive", 2).snapshot())
    svg = subprocess.run(
        ["dot", "-Tsvg"],
        input=to_dot(objects, title="t"),
        text=True,
        capture_output=True,
        timeout=30,
        check=True,
    ).stdout
    assert svg.count("fd 3") == 3
    assert "open file description #1" in svg
    assert "reference count 3" in svg
    assert f"socket:[{objects.sockets[0].inode}]" in svg
    assert "accept queue" in svg
