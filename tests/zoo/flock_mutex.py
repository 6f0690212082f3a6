"""flock_mutex — a CORRECT Apache-prefork-like server: an flock() accept mutex, a maintenance pass.

Design:
    The master binds one listening socket with TCP_DEFER_ACCEPT (a connection reaches the accept
    queue only once its first data has arrived, K19) and forks the workers. Each worker opens the
    lock file itself after fork (an flock() belongs to an open file description: a descriptor
    inherited from the master would be one lock shared by everybody), then loops: take the mutex
    (``flock(LOCK_EX)``), wait in ``select()`` on the listener, the pipe of death and its signal
    pipe, ``accept()``, release the mutex, serve. Only the holder waits on the listener, so one
    connection wakes one worker. The kernel releases an flock() when its holder dies, so a
    SIGKILLed holder never blocks the others (P2).

    The master keeps the write end of a pipe of death (Apache's pod); workers keep only the read
    end. When the master dies the pipe reads EOF: the holder sees it and exits, which releases
    the mutex to the next worker, which sees it too — the workers leave one after the other.

    The master does not respawn on SIGCHLD: it reaps at once, and a maintenance pass once a
    second forks a replacement for every slot found empty at the previous pass (Apache's
    ``perform_idle_server_maintenance``): a dead worker is replaced after 1–2 s.

Freedoms taken (DOMAIN §9):
    F1 early — on a graceful stop the master closes its listener at once.
    F2 early — a retiring worker closes its listener copy before finishing (Apache's
        ``stop_listening``).
    F4 retire first — a reload retires the old generation first; the maintenance pass starts the
        new generation as slots free up (Apache's graceful restart).
    F6, K19 — TCP_DEFER_ACCEPT: a connection that sent nothing is not queued.
    F7 — the pipe of death reads EOF when the master is gone (latency: one cascade step per
        worker, milliseconds when idle; a worker in the middle of a request finishes it first).
    F10 — a maintenance pass once a second replaces dead workers (1–2 s).

Signals (to the master, Apache's):
    USR1  reload (graceful restart): USR1 to the workers (retire), new generation as slots free.
    WINCH graceful stop: USR1 to the workers, close the listener, exit once they are gone.
    TERM  fast stop: TERM and CONT to the workers (default action: exit), SIGKILL after 1 s.

Workers: USR1 = retire (stop accepting, finish the request in hand, exit), TERM = die.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Protocol

if __package__ in (None, ""):  # run as a file: make ``tests.zoo`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.zoo.command_line import HOST, Arguments, parse_arguments
from tests.zoo.one_shot_http import serve_connection
from tests.zoo.select_herd import SignalInbox, fork_child, unblock_lifecycle_signals

RELOAD, GRACEFUL, FAST = signal.SIGUSR1, signal.SIGWINCH, signal.SIGTERM
WORKER_RETIRE = signal.SIGUSR1
MAINTENANCE_INTERVAL = 1.0  # F10: Apache's idle maintenance runs about once a second
DEFER_ACCEPT_SECONDS = 30  # Apache's ``AcceptFilter http data`` (K19)
READ_TIMEOUT = 5.0  # a deferred connection has data already; this only bounds a slow client
FAST_STOP_GRACE = 1.0
BACKLOG = 128


class RetiredWhileWaitingError(Exception):
    """Raised by the USR1 handler only while the worker waits for the mutex (nothing in hand)."""


class AcceptMutex(Protocol):
    """What a worker needs from an accept mutex."""

    def open_in_child(self) -> None:
        """Set up in the worker, after fork."""

    def acquire(self) -> None:
        """Block until this worker holds the mutex."""

    def release(self) -> None:
        """Release it if this worker holds it."""


class FlockMutex:
    """The accept mutex: ``flock()`` on a lock file that each worker opens for itself.

    The master creates it before forking; :meth:`open_in_child` runs in each worker."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def open_in_child(self) -> None:
        """A fresh open file description: flock() locks belong to it, not to the process."""
        self.fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)

    def acquire(self) -> None:
        """Block until this worker holds the mutex."""
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        """Let the next worker in (unlocking a lock we do not hold does nothing)."""
        fcntl.flock(self.fd, fcntl.LOCK_UN)


@dataclass
class Worker:
    """Mutex, select, accept, release, serve; until retired or the pod says the master is gone."""

    listener: socket.socket
    pod: int
    mutex: AcceptMutex
    retiring: bool = False
    phase: str = "mutex"  # "mutex" (waiting for it), "select" (holding it) or "serving"
    inbox: SignalInbox | None = None

    def run(self) -> None:
        """The worker's life after fork."""
        self.mutex.open_in_child()
        signal.signal(FAST, signal.SIG_DFL)  # Apache's just_die
        signal.signal(GRACEFUL, signal.SIG_IGN)
        self.inbox = SignalInbox((WORKER_RETIRE,))
        signal.signal(WORKER_RETIRE, self.on_retire)
        unblock_lifecycle_signals()
        with contextlib.suppress(RetiredWhileWaitingError):
            while not self.retiring:
                conn = self.accept_one()
                if conn is not None:
                    self.phase = "serving"
                    serve_connection(conn, READ_TIMEOUT)
        self.listener.close()

    def on_retire(self, _signum: int, _frame: object) -> None:
        """USR1: stop accepting. A wait for the mutex is interrupted (nothing is in hand then);
        while serving, the listener copy is closed at once (F2 early, Apache's stop_listening);
        a holder waiting in select() is woken by the signal pipe."""
        self.retiring = True
        if self.phase == "mutex":
            raise RetiredWhileWaitingError
        if self.phase == "serving":
            self.listener.close()

    def accept_one(self) -> socket.socket | None:
        """Take the mutex, wait for a connection, accept it, release the mutex."""
        self.phase = "mutex"
        if self.retiring:
            return None
        try:
            self.mutex.acquire()
            self.phase = "select"
            return self.accept_while_holding()
        finally:
            self.mutex.release()  # also when a retire interrupted the wait: releasing is idempotent

    def accept_while_holding(self) -> socket.socket | None:
        """Holding the mutex: the only worker that waits on the listener."""
        assert self.inbox is not None
        if self.retiring:
            return None
        watched = [self.listener.fileno(), self.pod, self.inbox.read_end]
        readable, _, _ = select.select(watched, [], [])
        self.inbox.take()
        if self.pod in readable and not os.read(self.pod, 1):
            self.retiring = True  # EOF: the master is gone (F7)
            return None
        if self.retiring or self.listener.fileno() not in readable:
            return None
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return None
        conn.setblocking(True)
        return conn


@dataclass
class Master:
    """Apache-like parent: signals, a maintenance pass once a second, a pipe of death."""

    arguments: Arguments
    listener: socket.socket | None = None
    lock_dir: str = ""
    pod_read: int = -1
    pod_write: int = -1
    generation: int = 0
    slots: dict[int, int] = field(default_factory=dict)  # slot -> pid of its worker
    empty_since_last_pass: set[int] = field(default_factory=set)
    stopping: str = ""
    kill_at: float = 0.0
    inbox: SignalInbox | None = None

    def open_listener(self) -> socket.socket:
        """The shared listener, with TCP_DEFER_ACCEPT (F6, K19); non-blocking for select+accept."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, DEFER_ACCEPT_SECONDS)
        sock.bind((HOST, self.arguments.port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
        return sock

    def make_mutex(self) -> AcceptMutex:
        """The accept mutex the workers share."""
        path = os.path.join(self.lock_dir, "accept.lock")
        with open(path, "w"):
            pass
        return FlockMutex(path)

    def run(self) -> int:
        """Start, then alternate between signals and the maintenance pass until stopped."""
        self.lock_dir = tempfile.mkdtemp(prefix="zoo-flock-")
        try:
            return self.serve()
        finally:
            shutil.rmtree(self.lock_dir, ignore_errors=True)

    def serve(self) -> int:
        """The master's loop."""
        self.listener = self.open_listener()
        self.pod_read, self.pod_write = os.pipe()
        mutex = self.make_mutex()
        self.inbox = SignalInbox((RELOAD, GRACEFUL, FAST, signal.SIGCHLD))
        for slot in range(self.arguments.workers):
            self.spawn(slot, mutex)
        next_pass = time.monotonic() + MAINTENANCE_INTERVAL
        while not (self.stopping and not self.slots):
            select.select([self.inbox.read_end], [], [], max(0.0, next_pass - time.monotonic()))
            for signum in self.inbox.take():
                self.handle(signum)
            self.reap()
            if time.monotonic() >= next_pass:
                self.maintain(mutex)
                next_pass = time.monotonic() + MAINTENANCE_INTERVAL
        return 0

    def spawn(self, slot: int, mutex: AcceptMutex) -> None:
        """Fork a worker into ``slot``; it keeps only the pod's read end."""
        assert self.listener is not None
        listener, pod_read, pod_write = self.listener, self.pod_read, self.pod_write

        def run_worker() -> None:
            assert self.inbox is not None
            self.inbox.close()
            os.close(pod_write)  # else the pod never reads EOF while a worker lives
            Worker(listener, pod_read, mutex).run()

        self.slots[slot] = fork_child(run_worker)

    def handle(self, signum: int) -> None:
        """One recorded signal."""
        if signum == FAST:
            self.stop_fast()
        elif signum == GRACEFUL and not self.stopping:
            self.stop_gracefully()
        elif signum == RELOAD and not self.stopping:
            self.generation += 1
            self.signal_workers(WORKER_RETIRE)  # F4: retire first, refill at the next passes

    def reap(self) -> None:
        """Collect dead workers at once; their slots are refilled by :meth:`maintain`."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for slot, worker in list(self.slots.items()):
                if worker == pid:
                    del self.slots[slot]

    def maintain(self, mutex: AcceptMutex) -> None:
        """F10: fork into the slots that were already empty at the previous pass."""
        if self.stopping == "fast" and time.monotonic() >= self.kill_at:
            self.signal_workers(signal.SIGKILL)
        empty = {slot for slot in range(self.arguments.workers) if slot not in self.slots}
        if not self.stopping:
            for slot in sorted(empty & self.empty_since_last_pass):
                self.refill(slot, mutex)
        self.empty_since_last_pass = {
            s for s in range(self.arguments.workers) if s not in self.slots
        }

    def refill(self, slot: int, mutex: AcceptMutex) -> None:
        """Start a worker in an empty slot."""
        self.spawn(slot, mutex)

    def stop_gracefully(self) -> None:
        """WINCH: retire every worker and close the listener now (F1 early)."""
        self.stopping = "graceful"
        self.signal_workers(WORKER_RETIRE)
        assert self.listener is not None
        self.listener.close()

    def stop_fast(self) -> None:
        """TERM: the workers die; SIGKILL after FAST_STOP_GRACE (the next pass after it)."""
        self.stopping = "fast"
        self.kill_at = time.monotonic() + FAST_STOP_GRACE
        self.signal_workers(signal.SIGTERM)
        self.signal_workers(signal.SIGCONT)

    def signal_workers(self, signum: int) -> None:
        """kill() every worker; one that already exited is not an error."""
        for pid in list(self.slots.values()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)


def main(master_class: type[Master] = Master, doc: str | None = __doc__) -> None:
    """Parse the command line and run ``master_class`` until it stops."""
    sys.exit(master_class(parse_arguments(doc or "")).run())


if __name__ == "__main__":
    main()
