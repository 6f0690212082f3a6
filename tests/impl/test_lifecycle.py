"""nginx's lifecycle on the reference server: reload, upgrade, graceful and fast stops, WINCH."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from forkshare.conformance.observe.launch import free_port
from forkshare.conformance.observe.process_group import ProcessGroup
from tests.impl.serverproc import (
    MODES,
    Server,
    Stream,
    accepted_inodes,
    children,
    get,
    is_running,
    is_stopped,
    listening_inodes,
    running,
    socket_inodes,
    wait_until,
)

pytestmark = pytest.mark.process

STREAM = 2000


def kill_an_idle_worker(server: Server) -> int:
    """SIGKILL a worker at a moment it holds no client connection (SIGSTOP, look, decide).

    A SIGKILL loses the request a worker is serving in any server; what must never be lost is
    what it had not started: the queued connections.
    """
    for _ in range(2000):
        victim = server.workers()[0]
        _stop(victim)
        if not socket_inodes(victim) & accepted_inodes(server.port):
            os.kill(victim, signal.SIGKILL)
            return victim
        os.kill(victim, signal.SIGCONT)
        time.sleep(0.001)  # let it finish what it holds before looking again
    raise AssertionError("no worker was ever idle")


def _stop(pid: int) -> None:
    """SIGSTOP ``pid`` and wait until it has stopped: kill() only queues the signal."""
    os.kill(pid, signal.SIGSTOP)
    wait_until(lambda: is_stopped(pid), 5, f"{pid} to stop")


@pytest.mark.parametrize("mode", MODES)
def test_a_stream_survives_a_worker_kill_and_a_reload(tmp_path: Path, mode: str) -> None:
    with running(tmp_path, mode=mode, workers=2) as server:
        # The stream keeps flowing around each event, but is held short of its end until the
        # event is done, so that every event happens in the middle of it however slow the host.
        stream = Stream(server.port, STREAM)
        stream.allow(STREAM // 2)
        stream.start()
        wait_until(lambda: stream.done >= STREAM // 3, 60, "a third of the stream")
        kill_an_idle_worker(server)
        stream.allow(stream.started + STREAM // 3)
        wait_until(lambda: stream.done >= 2 * STREAM // 3, 60, "two thirds of the stream")
        server.signal(signal.SIGHUP)
        stream.allow(STREAM)
        stream.join(120)
        assert stream.failures == []
        assert len(stream.replies) == STREAM
        assert any(reply.generation == 2 for reply in stream.replies), "the reload served"


def _new_master(server: Server) -> int | None:
    for line in server.trace_path.read_text().splitlines():
        event = json.loads(line)
        if event["event"] == "fork" and event["role"] == "master":
            child: int = event["child"]
            return child
    return None


@pytest.mark.parametrize("mode", MODES)
def test_an_upgrade_keeps_the_sockets_and_refuses_nobody(tmp_path: Path, mode: str) -> None:
    with running(tmp_path, mode=mode, workers=2) as server:
        before = listening_inodes(server.port)
        stream = Stream(server.port, STREAM)
        stream.allow(STREAM // 2)
        stream.start()
        wait_until(lambda: stream.done >= STREAM // 4, 60, "a quarter of the stream")
        server.signal(signal.SIGUSR2)
        wait_until(lambda: _new_master(server) is not None, 5, "the new master's fork")
        new_master = _new_master(server)
        assert new_master is not None
        wait_until(lambda: len(children(new_master)) == 2, 10, "the new master's workers")
        new_workers = set(children(new_master))
        stream.allow(stream.started + STREAM // 4)
        wait_until(lambda: stream.done >= STREAM // 2, 60, "half of the stream")
        server.signal(signal.SIGQUIT)
        stream.allow(STREAM)
        wait_until(lambda: server.process.poll() is not None, 15, "the old master to exit")
        stream.join(120)
        assert stream.failures == []
        assert listening_inodes(server.port) == before, "the same sockets, queues and all"
        assert is_running(new_master)
        assert any(reply.pid in new_workers for reply in stream.replies)


@pytest.mark.parametrize("mode", MODES)
def test_a_graceful_stop_ends_within_a_second_despite_a_silent_client(
    tmp_path: Path, mode: str
) -> None:
    with running(tmp_path, mode=mode, workers=2) as server:
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        with silent:
            workers = server.workers()
            wait_until(
                lambda: any(socket_inodes(pid) & accepted_inodes(server.port) for pid in workers),
                5,
                "a worker to accept the silent connection",
            )
            started = time.monotonic()
            server.signal(signal.SIGQUIT)
            wait_until(lambda: not server.group_members(), 1.0, "every process to exit")
            elapsed = time.monotonic() - started
            print(f"\n{mode}: graceful stop with a silent client took {elapsed:.3f} s")
            assert elapsed < 1.0
            assert server.process.wait(timeout=1) == 0
            assert silent.recv(100) == b"", "the silent connection was closed"


@pytest.mark.parametrize("mode", MODES)
def test_killing_the_master_takes_every_worker_down(tmp_path: Path, mode: str) -> None:
    with running(tmp_path, mode=mode, workers=2) as server:
        workers = server.workers()
        server.process.kill()
        server.process.wait(timeout=5)
        started = time.monotonic()
        wait_until(lambda: not any(map(is_running, workers)), 1.0, "the orphaned workers to exit")
        elapsed = time.monotonic() - started
        print(f"\n{mode}: workers gone {elapsed:.3f} s after the master's SIGKILL")
        assert elapsed < 1.0
        with socket.socket() as probe:  # the port is free again
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", server.port))
            probe.listen()


def test_a_terminate_stops_everything_at_once(tmp_path: Path) -> None:
    with running(tmp_path, workers=2) as server:
        server.signal(signal.SIGTERM)
        assert server.process.wait(timeout=3) == 0
        wait_until(lambda: not server.group_members(), 2, "every process to exit")


def test_a_reload_opens_added_and_closes_removed_listeners(tmp_path: Path) -> None:
    first, second = free_port(), free_port()
    config = tmp_path / "forkshare.toml"
    config.write_text(f'listen = ["127.0.0.1:{first}"]\n')
    with running(tmp_path, extra=["--config", str(config)], port=first) as server:
        config.write_text(f'listen = ["127.0.0.1:{second}"]\n')
        server.signal(signal.SIGHUP)
        wait_until(lambda: _serves(second, generation=2), 5, "the added listener to serve")
        wait_until(lambda: not listening_inodes(first), 5, "the removed listener to close")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", first), timeout=2)


def test_a_failed_reload_keeps_the_running_configuration(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "forkshare.toml"
    config.write_text(f'listen = ["127.0.0.1:{port}"]\n')
    with running(tmp_path, extra=["--config", str(config)], port=port) as server:
        workers = set(server.workers())
        config.write_text("listen = [\n")  # not TOML any more
        server.signal(signal.SIGHUP)
        wait_until(lambda: "reload failed" in server.log(), 5, "the reload to be refused")
        assert set(server.workers()) == workers
        assert get(port).generation == 1


def _serves(port: int, generation: int) -> bool:
    try:
        return get(port, timeout=1).generation == generation
    except OSError:
        return False


def test_winch_stops_the_workers_and_keeps_the_sockets(tmp_path: Path) -> None:
    with running(tmp_path, workers=2) as server:
        inodes = listening_inodes(server.port)
        server.signal(signal.SIGWINCH)
        wait_until(lambda: not server.workers(), 5, "the workers to stop")
        assert socket_inodes(server.pid) & inodes == inodes, "the master keeps the sockets"
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as waiting:
            waiting.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            server.signal(signal.SIGHUP)
            reply = waiting.recv(4096)
        assert reply.startswith(b"HTTP/1.1 200")
        assert b"generation=2" in reply


def test_sockets_from_systemd_are_adopted_not_reopened(tmp_path: Path) -> None:
    with socket.socket() as activated:
        activated.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        activated.bind(("127.0.0.1", 0))
        activated.listen()
        port = activated.getsockname()[1]
        inode = os.fstat(activated.fileno()).st_ino
        trace = tmp_path / "trace.jsonl"
        fd = activated.fileno()
        # What systemd does: the socket at descriptor 3, LISTEN_PID = the server's own pid.
        script = (
            f"import os, sys; os.dup2({fd}, 3); "
            "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1'); "
            "os.execv(sys.executable, [sys.executable, '-m', 'forkshare.impl', "
            f"'--workers', '1', '--trace', {str(trace)!r}])"
        )
        group = ProcessGroup([sys.executable, "-c", script], output_dir=tmp_path, pass_fds=(fd,))
        server = Server(group, port, 1, trace)
        try:
            wait_until(lambda: _serves(port, generation=1), 10, "the activated socket to serve")
            assert listening_inodes(port) == {inode}, "no second socket was opened"
            events = [json.loads(line) for line in trace.read_text().splitlines()]
            assert [e["inode"] for e in events if e["event"] == "inherit"] == [inode]
        finally:
            server.kill()
