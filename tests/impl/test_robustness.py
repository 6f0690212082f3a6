"""Faults the reference server must survive, and failures it must report cleanly."""

from __future__ import annotations

import json
import os
import pwd
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.impl.serverproc import (
    cpu_seconds,
    fd_flags,
    get,
    running,
    start_server,
    wait_until,
)

pytestmark = pytest.mark.process

O_CLOEXEC = 0o2000000


def _few_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))


def test_emfile_makes_a_worker_pause_not_spin_and_service_recovers(tmp_path: Path) -> None:
    with running(tmp_path, workers=1, preexec=_few_descriptors) as server:
        (worker,) = server.workers()
        hogs = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(40)]
        try:
            wait_until(lambda: "Too many open files" in server.log(), 5, "EMFILE in the worker")
            before, pauses = cpu_seconds(worker), server.log().count("pausing accepts")
            time.sleep(2.0)  # a measurement window: a spinning worker burns ~2 s of CPU here
            spent = cpu_seconds(worker) - before
            retries = server.log().count("pausing accepts") - pauses
            print(f"\nEMFILE: {spent:.2f} CPU s in 2 s, {retries} pauses")
            assert spent < 0.5, f"the worker spins on EMFILE ({spent:.2f} s of CPU in 2 s)"
            assert 2 <= retries <= 6, "it pauses ~0.5 s, then tries again"
        finally:
            for hog in hogs:
                hog.close()
        wait_until(lambda: _answers(server.port), 5, "service to recover")


def _answers(port: int) -> bool:
    try:
        return get(port, timeout=1).status == 200
    except OSError:
        return False


def test_a_slow_client_gets_408(tmp_path: Path) -> None:
    with running(tmp_path, extra=["--header-timeout", "0.5"]) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as slow:
            slow.sendall(b"GET / HTTP/1.1\r\nHost:")
            started = time.monotonic()
            reply = slow.recv(4096)
        assert reply.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < 2.5


def test_malformed_and_oversized_heads_get_400_and_431(tmp_path: Path) -> None:
    with running(tmp_path) as server:
        for request, status in [
            (b"nonsense\r\n\r\n", b"400"),
            (b"GET / HTTP/1.1\r\nX: " + b"a" * 9000, b"431"),
        ]:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
                client.sendall(request)
                assert client.recv(4096).startswith(b"HTTP/1.1 " + status)


def test_keep_alive_serves_several_requests_on_one_connection(tmp_path: Path) -> None:
    with running(tmp_path) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
            pids = set()
            for _ in range(3):
                client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                reply = client.recv(4096)
                assert reply.startswith(b"HTTP/1.1 200")
                assert b"keep-alive" in reply
                pids.add(reply.split(b"pid=")[1].split()[0])
        assert len(pids) == 1


def test_a_busy_port_fails_with_the_syscall_named_and_nothing_left(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        server = start_server(tmp_path, extra=["--listen", f"127.0.0.1:{port}"], wait=False)
        try:
            assert server.process.wait(timeout=10) == 1
        finally:
            server.kill()
        message = f"bind(127.0.0.1:{port}) failed: [Errno 98] Address already in use"
        assert message in server.log()
        assert not server.group_members()


def test_bad_options_exit_2_with_the_problem_and_the_fix() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "forkshare.impl", "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "--workers 0: give a whole number from 1 to 512" in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the privilege drop needs root")
def test_workers_drop_privileges_before_serving(tmp_path: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    with running(tmp_path, extra=["--user", "nobody"]) as server:
        workers = server.workers()
        wait_until(
            lambda: all(_uid(pid) == nobody.pw_uid for pid in workers), 5, "workers to drop root"
        )
        assert _uid(server.pid) == 0, "the master keeps root to bind on reload"


def _uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[2])  # effective uid
    raise AssertionError(pid)


@pytest.mark.parametrize("mode", ["exclusive", "mutex", "passfd"])
def test_every_descriptor_is_close_on_exec(tmp_path: Path, mode: str) -> None:
    with running(tmp_path, mode=mode) as server:
        for pid in [server.pid, *server.workers()]:
            leaking = {
                fd for fd, flags in fd_flags(pid).items() if fd > 2 and not flags & O_CLOEXEC
            }
            assert not leaking, f"{pid} has inheritable descriptors {leaking}"


def test_the_trace_records_model_level_events(tmp_path: Path) -> None:
    with running(tmp_path, mode="mutex") as server:
        get(server.port)
        server.signal(15)
        server.process.wait(timeout=5)
        events = [json.loads(line) for line in server.trace_path.read_text().splitlines()]
    assert all({"ts", "pid", "event"} <= set(event) for event in events)
    names = {event["event"] for event in events}
    expected = {"listen", "fork", "accept", "respond", "mutex_acquire", "mutex_release", "signal"}
    assert expected | {"reap", "exit"} <= names
    (listen,) = [event for event in events if event["event"] == "listen"]
    assert listen["address"] == f"127.0.0.1:{server.port}"
    assert listen["reuseport"] is False
