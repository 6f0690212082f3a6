"""Test support for the reference server: run it for real, read /proc, be its client.

Every server is started by the verifier's launcher (:mod:`forkshare.conformance.observe.launch`,
also used by ``forkshare bench``): in its own session, its output in files, and
:meth:`Server.kill` kills the whole process group, so a failing test leaves nothing behind. Every
wait polls a condition against a deadline (:func:`wait_until`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from forkshare.conformance.observe.errors import PortInUseError, TargetFailedToStartError
from forkshare.conformance.observe.launch import free_port, launch
from forkshare.conformance.observe.process_group import ProcessGroup

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LISTEN_STATE = "0A"


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 10 ms until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


# -- /proc -------------------------------------------------------------------------------------


def is_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def is_stopped(pid: int) -> bool:
    """Whether ``pid`` is stopped by a signal (state T): only then is its fd table frozen."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "T"


def children(pid: int) -> list[int]:
    """The live children of ``pid`` (``/proc/PID/task/PID/children``)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [child for child in map(int, text.split()) if is_running(child)]


def socket_inodes(pid: int) -> set[int]:
    """The inodes of every socket ``pid`` holds a descriptor for."""
    inodes: set[int] = set()
    with contextlib.suppress(OSError):
        for entry in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(entry.path)
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


@dataclass(frozen=True, slots=True)
class TcpRow:
    """One row of /proc/net/tcp."""

    local_port: int
    remote_port: int
    state: str
    inode: int


def tcp_rows(port: int) -> list[TcpRow]:
    """The /proc/net/tcp rows whose local port is ``port``."""
    rows: list[TcpRow] = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == port:
            remote_port = int(fields[2].split(":")[1], 16)
            rows.append(TcpRow(local_port, remote_port, fields[3], int(fields[9])))
    return rows


def listening_inodes(port: int) -> set[int]:
    """The inodes of the sockets in LISTEN state on ``port`` (several with SO_REUSEPORT)."""
    return {row.inode for row in tcp_rows(port) if row.state == LISTEN_STATE}


def accepted_inodes(port: int) -> set[int]:
    """The inodes of accepted (server-side, not listening) connections on ``port``."""
    return {row.inode for row in tcp_rows(port) if row.state != LISTEN_STATE and row.inode}


def voluntary_switches(pid: int) -> int:
    """``voluntary_ctxt_switches`` of ``pid``: each time it went to sleep waiting for something."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise AssertionError(f"no voluntary_ctxt_switches for {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def fd_flags(pid: int) -> dict[int, int]:
    """``flags:`` (octal) of every descriptor of ``pid`` from /proc/PID/fdinfo."""
    flags: dict[int, int] = {}
    for entry in os.scandir(f"/proc/{pid}/fdinfo"):
        with contextlib.suppress(OSError):
            for line in Path(entry.path).read_text().splitlines():
                if line.startswith("flags:"):
                    flags[int(entry.name)] = int(line.split()[1], 8)
    return flags


# -- the client --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """What the server answered: the status and who served it."""

    status: int
    pid: int
    generation: int


def parse_reply(data: bytes) -> Reply:
    """Parse a full response of the reference server."""
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if status != 200:
        return Reply(status, 0, 0)
    fields = dict(item.split("=") for item in body.decode().split())
    return Reply(status, int(fields["pid"]), int(fields["generation"]))


def read_reply(sock: socket.socket) -> Reply:
    """Read until the server closes, then parse."""
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
    return parse_reply(b"".join(chunks))


REQUEST = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"


def get(port: int, timeout: float = 5.0) -> Reply:
    """One request on a fresh connection (``Connection: close``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(REQUEST)
        return read_reply(sock)


@dataclass(slots=True)
class Stream:
    """A bounded stream of requests from a few client threads; counts failures."""

    port: int
    total: int
    rate: float = 1000.0  # requests per second, all threads together (pacing, not waiting)
    threads: int = 6
    replies: list[Reply] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    started: int = 0
    allowed: int = 1 << 62
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Stream:
        """Start the client threads."""
        for _ in range(self.threads):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def allow(self, count: int) -> None:
        """Let the stream run up to ``count`` requests (it holds at that mark until raised)."""
        with self._lock:
            self.allowed = min(count, self.total)

    def _take(self) -> bool:
        while True:
            with self._lock:
                if self.started >= self.total:
                    return False
                if self.started < self.allowed:
                    self.started += 1
                    return True
            time.sleep(0.005)  # held at the allowance: pacing, not a condition

    def _run(self) -> None:
        interval = self.threads / self.rate
        next_start = time.monotonic()
        while self._take():
            next_start += interval
            time.sleep(max(0.0, next_start - time.monotonic()))
            try:
                reply = get(self.port, timeout=10.0)
            except (OSError, ValueError, IndexError) as error:
                with self._lock:
                    self.errors.append(repr(error))
                continue
            with self._lock:
                self.replies.append(reply)

    @property
    def done(self) -> int:
        """Requests finished so far, failed or not."""
        with self._lock:
            return len(self.replies) + len(self.errors)

    @property
    def failures(self) -> list[str]:
        """Every request that did not get a 200: client errors and other statuses."""
        with self._lock:
            bad = [f"status {reply.status}" for reply in self.replies if reply.status != 200]
            return self.errors + bad

    def join(self, timeout: float) -> None:
        """Wait for every thread (bounded)."""
        deadline = time.monotonic() + timeout
        for thread in self._workers:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(thread.is_alive() for thread in self._workers), "stream did not finish"


@dataclass(slots=True)
class Burst:
    """``count`` concurrent clients that each connect, send one request and wait for the reply."""

    port: int
    count: int
    sent: int = 0
    replies: list[Reply] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Burst:
        """Start every client."""
        for _ in range(self.count):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=20.0) as sock:
                sock.sendall(REQUEST)
                with self._lock:
                    self.sent += 1
                reply = read_reply(sock)
        except (OSError, ValueError, IndexError) as error:
            with self._lock:
                self.errors.append(repr(error))
            return
        with self._lock:
            self.replies.append(reply)

    def join(self, timeout: float) -> None:
        """Wait for every client (bounded)."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(thread.is_alive() for thread in self._threads), "burst did not finish"

    @property
    def failures(self) -> list[str]:
        """Every client that did not get a 200."""
        return self.errors + [f"status {r.status}" for r in self.replies if r.status != 200]


# -- the server --------------------------------------------------------------------------------


@dataclass(slots=True)
class Server:
    """A running ``python -m forkshare.impl`` with its port, process group and trace file."""

    group: ProcessGroup
    port: int
    workers_wanted: int
    trace_path: Path

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The master's process (the group's leader)."""
        return self.group.process

    @property
    def pid(self) -> int:
        """The master's pid."""
        return self.group.pid

    def workers(self, master: int | None = None) -> list[int]:
        """The live worker pids of ``master`` (default: the first master)."""
        return children(self.pid if master is None else master)

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until every worker runs and a request succeeds."""

        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}: {self.log()}")
            if len(self.workers()) < self.workers_wanted:
                return False
            try:
                return get(self.port, timeout=1.0).status == 200
            except OSError:
                return False

        wait_until(ready, timeout, "the server to serve")

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the master."""
        os.kill(self.pid, signum)

    def log(self) -> str:
        """What the server wrote to stderr so far."""
        return self.group.stderr()

    def kill(self) -> None:
        """SIGKILL the whole process group and reap the master (teardown)."""
        self.group.stop(first=signal.SIGKILL, grace=5.0)

    def group_members(self) -> list[int]:
        """Every live process of the server's process group."""
        members = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    pid = int(entry.name)
                    if os.getpgid(pid) == self.pid and is_running(pid):
                        members.append(pid)
        return members


def start_server(
    tmp_path: Path,
    mode: str = "exclusive",
    workers: int = 2,
    extra: Sequence[str] = (),
    preexec: Callable[[], None] | None = None,
    wait: bool = True,
    port: int | None = None,
) -> Server:
    """Start the server on a free port (retrying if another process took the port).

    With ``port`` given, no ``--listen`` is passed (``extra`` carries a ``--config``).
    """
    for _attempt in range(5):
        chosen = port or free_port()
        output = tmp_path / f"server-{chosen}"
        output.mkdir(exist_ok=True)
        trace_path = tmp_path / f"trace-{chosen}.jsonl"
        command = [sys.executable, "-m", "forkshare.impl"]
        command += [] if port else ["--listen", f"127.0.0.1:{chosen}"]
        command += ["--workers", str(workers), "--mode", mode, "--trace", str(trace_path)]
        command += list(extra)
        if not wait:
            group = ProcessGroup(command, output_dir=output, preexec=preexec)
            return Server(group, chosen, workers, trace_path)
        try:
            target = launch(command, chosen, output_dir=output, preexec=preexec)
        except PortInUseError:
            continue  # another process took the port between free_port() and now
        except TargetFailedToStartError as error:
            if "Address already in use" in str(error):
                continue
            raise
        server = Server(target.group, chosen, workers, trace_path)
        try:
            server.wait_ready()
        except AssertionError:
            server.kill()
            raise
        return server
    raise AssertionError("no free port after 5 attempts")


@contextlib.contextmanager
def running(
    tmp_path: Path,
    mode: str = "exclusive",
    workers: int = 2,
    extra: Sequence[str] = (),
    preexec: Callable[[], None] | None = None,
    port: int | None = None,
) -> Iterator[Server]:
    """A started server, killed (whole process group) on exit."""
    server = start_server(tmp_path, mode, workers, extra, preexec, port=port)
    try:
        yield server
    finally:
        server.kill()


MODES = ("blocking", "poll", "exclusive", "mutex", "reuseport", "passfd")
