"""Test support for the zoo: start a zoo server for real, look at it from outside, be its client.

Everything is observed the way a black-box verifier would: the process tree and descriptor tables
from /proc, the accept queue from /proc/net/tcp (K11, K12), and what a client sees (served, reset,
closed without an answer, refused, or nothing yet). Every server runs in its own session and
process group; :meth:`ZooServer.kill` kills the group and every process outside it that still
holds one of the server's listening sockets (a leaked helper). Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ZOO = Path(__file__).resolve().parent
LISTEN = "0A"
REQUEST = b"GET / HTTP/1.1\r\nHost: zoo\r\nConnection: close\r\n\r\n"


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` every 20 ms; True as soon as it holds, False after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# -- /proc --------------------------------------------------------------------------------------


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def state_of(pid: int) -> str:
    """The state letter of ``pid`` (R, S, T, Z…), or "" when it is gone."""
    fields = stat_fields(pid)
    return fields[0] if fields else ""


def is_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def parent_of(pid: int) -> int:
    """The parent pid of ``pid`` (0 if it is gone)."""
    fields = stat_fields(pid)
    return int(fields[1]) if fields else 0


def session_of(pid: int) -> int:
    """The session id of ``pid`` (0 if it is gone)."""
    fields = stat_fields(pid)
    return int(fields[3]) if fields else 0


def children_of(pid: int) -> list[int]:
    """The live children of ``pid``."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [child for child in map(int, text.split()) if is_alive(child)]


def socket_inodes(pid: int) -> set[int]:
    """The inodes of every socket ``pid`` has a descriptor for."""
    inodes: set[int] = set()
    with contextlib.suppress(OSError):
        for entry in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(entry.path)
                if link.startswith("socket:["):
                    inodes.add(int(link[8:-1]))
    return inodes


def is_zoo_process(pid: int) -> bool:
    """Whether ``pid`` runs a zoo script (so teardown never kills anybody else's process)."""
    try:
        return str(ZOO) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def holders(inodes: set[int]) -> set[int]:
    """Every live process that holds a descriptor for one of ``inodes``."""
    found: set[int] = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            pid = int(entry.name)
            if socket_inodes(pid) & inodes and is_alive(pid):
                found.add(pid)
    return found


@dataclass(frozen=True, slots=True)
class TcpRow:
    """One /proc/net/tcp row on the server's port."""

    state: str
    remote_port: int
    rx_queue: int
    inode: int


def tcp_rows(port: int) -> list[TcpRow]:
    """The rows of /proc/net/tcp whose local port is ``port``."""
    rows = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            rx_queue = int(fields[4].split(":")[1], 16)
            remote = int(fields[2].split(":")[1], 16)
            rows.append(TcpRow(fields[3], remote, rx_queue, int(fields[9])))
    return rows


def listening_inodes(port: int) -> set[int]:
    """The inodes of the sockets LISTENing on ``port`` (several under SO_REUSEPORT)."""
    return {row.inode for row in tcp_rows(port) if row.state == LISTEN}


def queued(port: int) -> int:
    """Connections waiting in the accept queues on ``port`` (rx_queue of the LISTEN rows)."""
    return sum(row.rx_queue for row in tcp_rows(port) if row.state == LISTEN)


def accepted_by(pid: int, port: int) -> set[int]:
    """Inodes of accepted connections on ``port`` that ``pid`` holds."""
    accepted = {row.inode for row in tcp_rows(port) if row.state != LISTEN and row.inode}
    return socket_inodes(pid) & accepted


def is_refusing(port: int) -> bool:
    """Whether a connect to ``port`` is refused right now."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


# -- the client ---------------------------------------------------------------------------------


@dataclass
class Client:
    """One client connection; :meth:`outcome` says what it saw."""

    port: int
    sock: socket.socket | None = None
    refused: bool = False

    def connect(self) -> Client:
        """Connect (the handshake completes even when nobody accepts yet)."""
        self.sock = socket.socket()
        self.sock.settimeout(2.0)
        try:
            self.sock.connect(("127.0.0.1", self.port))
        except ConnectionRefusedError:
            self.refused = True
        return self

    def send(self, data: bytes = REQUEST) -> Client:
        """Send (part of) the request; a reset connection stays for :meth:`outcome` to report."""
        if self.sock is not None and not self.refused:
            with contextlib.suppress(OSError):
                self.sock.sendall(data)
        return self

    def outcome(self, timeout: float = 3.0) -> str:
        """``served`` (a 200 came back), ``reset``, ``closed`` (EOF without an answer),
        ``refused``, or ``pending`` (nothing within ``timeout``)."""
        if self.refused:
            return "refused"
        assert self.sock is not None
        self.sock.settimeout(timeout)
        data = b""
        try:
            while chunk := self.sock.recv(4096):
                data += chunk
        except ConnectionResetError:
            return "reset"
        except TimeoutError:
            return "pending" if not data else "partial"
        finally:
            self.sock.close()
        return "served" if data.startswith(b"HTTP/1.1 200") else "closed"

    def served_by(self, timeout: float = 3.0) -> int:
        """The pid named in a 200 response (0 when not served)."""
        assert self.sock is not None
        self.sock.settimeout(timeout)
        data = b""
        with contextlib.suppress(OSError):
            while chunk := self.sock.recv(4096):
                data += chunk
        self.sock.close()
        if not data.startswith(b"HTTP/1.1 200"):
            return 0
        return int(data.rsplit(b"pid ", 1)[1])


def clients(port: int, count: int, request: bool = True) -> list[Client]:
    """``count`` connected clients, each having sent a full request unless ``request`` is False."""
    made = [Client(port).connect() for _ in range(count)]
    return [client.send() for client in made] if request else made


def outcomes(made: list[Client], timeout: float = 3.0) -> list[str]:
    """Every client's outcome (each waits at most ``timeout``)."""
    return [client.outcome(timeout) for client in made]


# -- the server ---------------------------------------------------------------------------------


@dataclass
class ZooServer:
    """A zoo server started as ``python tests/zoo/NAME.py --port P --workers N``."""

    name: str
    workers_wanted: int
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    seen_inodes: set[int] = field(default_factory=set)

    @property
    def master(self) -> int:
        """The master's pid (the command itself)."""
        assert self.process is not None
        return self.process.pid

    def start(self, log_dir: Path, timeout: float = 10.0) -> ZooServer:
        """Start in a new session; wait until its workers run and the port listens."""
        self.port = free_port()
        self.log = log_dir / f"{self.name}-{self.port}.log"
        script = ZOO / f"{self.name}.py"
        argv = [sys.executable, str(script), "--port", str(self.port)]
        argv += ["--workers", str(self.workers_wanted)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
        ready = wait_until(self.is_ready, timeout)
        assert ready, f"{self.name} did not start: {self.log.read_text(errors='replace')}"
        return self

    def is_ready(self) -> bool:
        """Every worker runs, holds a listening socket of the port, and sleeps."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited {self.process.returncode}")
        inodes = listening_inodes(self.port)
        self.seen_inodes |= inodes
        workers = self.workers()
        return (
            len(workers) == self.workers_wanted
            and bool(inodes)
            and all(socket_inodes(pid) & inodes for pid in workers)
            and all(state_of(pid) == "S" for pid in workers)
        )

    def workers(self) -> list[int]:
        """The master's live children that hold a listening socket of the port."""
        inodes = listening_inodes(self.port)
        self.seen_inodes |= inodes
        return [pid for pid in children_of(self.master) if socket_inodes(pid) & inodes]

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the master."""
        os.kill(self.master, signum)

    def listener_holders(self) -> set[int]:
        """Every process holding a listening socket of the port."""
        inodes = listening_inodes(self.port)
        self.seen_inodes |= inodes
        return holders(inodes)

    def group(self) -> list[int]:
        """Every live process in the server's process group."""
        members = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    pid = int(entry.name)
                    if os.getpgid(pid) == self.master and is_alive(pid):
                        members.append(pid)
        return members

    def is_gone(self) -> bool:
        """The master exited (reaped) and no process of the group is left."""
        assert self.process is not None
        return self.process.poll() is not None and not self.group()

    def kill(self) -> None:
        """Teardown: SIGKILL the group and any leaked holder of the server's sockets."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.master, signal.SIGKILL)
        for pid in holders(self.seen_inodes | listening_inodes(self.port)):
            if pid != os.getpid() and is_zoo_process(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
