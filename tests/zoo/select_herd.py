"""select_herd — a CORRECT prefork server: select() and a non-blocking accept on one shared socket.

Design:
    The master binds one listening socket (non-blocking) and forks the workers; they inherit it.
    Each synchronous worker waits in ``select()`` on the listener and on its signal pipe, and tries a
    non-blocking ``accept()`` when the listener is readable: every idle worker wakes per
    connection and the losers get EAGAIN (the thundering herd of gunicorn's sync worker, K4, G1).
    The master never has the listener in its own wait set. A worker that dies is replaced at once
    (SIGCHLD). A reload forks the new generation first, then stops the old one gracefully.

Freedoms taken (DOMAIN §9):
    F1 late — on a graceful stop the master keeps its listener until its last worker has exited.
    F2 late — a worker told to stop keeps its copy of the listener until it exits.
    F3 wait — a worker that has accepted a silent client waits for its request up to
        READ_TIMEOUT (also on a graceful stop).
    F7 polling — workers compare ``getppid()`` with their master every PARENT_POLL seconds
        (and after each connection): an orphan exits within about PARENT_POLL (plus READ_TIMEOUT
        when a silent client is in hand).

Signals (to the master):
    HUP  reload: fork a new generation on the same socket, then TERM (graceful) the old one.
    TERM graceful stop: TERM to the workers; they finish the request in hand and exit; then the
         master closes its listener and exits 0.
    INT  fast stop: INT and CONT to the workers (they exit at once); SIGKILL whoever is left after
         FAST_STOP_GRACE; the master exits 0.

Workers: TERM = stop gracefully, INT = exit now, HUP ignored.

This module is also the correct base of several defective zoo servers: each overrides one method
or constant, and that override is its defect.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

if __package__ in (None, ""):  # run as a file: make ``tests.zoo`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.zoo.command_line import HOST, Arguments, parse_arguments
from tests.zoo.one_shot_http import serve_connection

READ_TIMEOUT = 5.0  # F3: how long a worker waits for the request of a client it accepted
PARENT_POLL = 0.5  # F7: how often an idle worker checks that its master is still its parent
FAST_STOP_GRACE = 1.0  # how long the fast stop waits before SIGKILL
MASTER_TICK = 0.25  # the master's loop wakes at least this often (timers)
BACKLOG = 128

RELOAD, GRACEFUL, FAST = signal.SIGHUP, signal.SIGTERM, signal.SIGINT
WORKER_GRACEFUL, WORKER_FAST = signal.SIGTERM, signal.SIGINT
# Blocked around fork() until the child has its own handlers: a signal sent to a worker that has
# just been forked is delivered late, never lost into the master's handler (gunicorn#1910, B13).
LIFECYCLE_SIGNALS = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGUSR1}


class SignalInbox:
    """Signal handlers that only record: the loop reads the record (and wakes on the pipe)."""

    def __init__(self, signums: tuple[signal.Signals, ...]) -> None:
        self.read_end, write_end = os.pipe()
        os.set_blocking(self.read_end, False)
        os.set_blocking(write_end, False)
        self.write_end = write_end
        self.received: list[int] = []
        signal.set_wakeup_fd(write_end)
        for signum in signums:
            signal.signal(signum, self._record)

    def _record(self, signum: int, _frame: object) -> None:
        self.received.append(signum)

    def take(self) -> list[int]:
        """The signals received since the last call, oldest first; empties the pipe."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self.read_end, 512):
                pass
        taken, self.received[:] = list(self.received), []
        return taken

    def close(self) -> None:
        """Forget the pipe (a forked child makes its own inbox)."""
        signal.set_wakeup_fd(-1)
        os.close(self.read_end)
        os.close(self.write_end)


def fork_child(run: Callable[[], None]) -> int:
    """Fork with the lifecycle signals blocked; the child runs ``run`` (which unblocks them once
    its handlers are in place) and always ends in ``os._exit``: it never returns."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, LIFECYCLE_SIGNALS)
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            run()
            status = 0
        finally:
            os._exit(status)
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return pid


def unblock_lifecycle_signals() -> None:
    """In a forked child, once its handlers are installed: let the signals in."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, LIFECYCLE_SIGNALS)


# -- the worker ---------------------------------------------------------------------------------


@dataclass
class Worker:
    """One synchronous worker: select() on the shared listener, serve one connection at a time."""

    listener: socket.socket | None
    master_pid: int
    slot: int
    stopping: bool = False
    inbox: SignalInbox | None = None

    def run(self) -> None:
        """Serve until told to stop or until the master is gone."""
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(WORKER_FAST, lambda *_: os._exit(0))
        self.inbox = SignalInbox((WORKER_GRACEFUL,))
        signal.signal(WORKER_GRACEFUL, self.on_graceful)
        unblock_lifecycle_signals()
        while not self.stopping and self.master_is_alive():
            self.serve_when_ready()
        self.retire()

    def on_graceful(self, _signum: int, _frame: object) -> None:
        """TERM: finish the connection in hand, then leave the loop."""
        self.stopping = True

    def master_is_alive(self) -> bool:
        """F7 polling: the master is alive while it is still our parent."""
        return os.getppid() == self.master_pid

    def watched(self) -> list[socket.socket]:
        """The sockets this worker waits on for connections."""
        return [] if self.listener is None else [self.listener]

    def serve_when_ready(self) -> None:
        """Wait up to PARENT_POLL for a connection (or a signal); accept and serve it."""
        assert self.inbox is not None
        watched = self.watched()
        waited = [sock.fileno() for sock in watched] + [self.inbox.read_end]
        readable, _, _ = select.select(waited, [], [], PARENT_POLL)
        self.inbox.take()
        for sock in watched:
            if sock.fileno() in readable and not self.stopping:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    continue  # another worker took it (K4: every idle worker was woken)
                conn.setblocking(True)
                serve_connection(conn, READ_TIMEOUT)

    def retire(self) -> None:
        """Leave: the listener copy goes with the process (F2 late)."""


# -- the master ---------------------------------------------------------------------------------


@dataclass
class Master:
    """Owns the listening socket and the workers; turns signals into lifecycle steps."""

    arguments: Arguments
    listener: socket.socket | None = None
    generation: int = 0
    workers: dict[int, tuple[int, int]] = field(default_factory=dict)  # pid -> (generation, slot)
    pending_respawns: list[tuple[float, int]] = field(default_factory=list)  # (due, slot)
    stopping: str = ""  # "", "graceful" or "fast"
    kill_at: float = 0.0
    inbox: SignalInbox | None = None

    RESPAWN_DELAY = 0.0  # seconds between a worker's death and its replacement
    WORKER = Worker

    def open_listener(self) -> socket.socket | None:
        """The one listening socket every worker shares (non-blocking: workers select on it)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, self.arguments.port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
        return sock

    def start(self) -> None:
        """Bind, fork the first generation."""
        self.listener = self.open_listener()
        self.inbox = SignalInbox((RELOAD, GRACEFUL, FAST, signal.SIGCHLD))
        for slot in range(self.arguments.workers):
            self.spawn(slot)

    def listener_for(self, slot: int) -> socket.socket | None:
        """The socket the worker of ``slot`` accepts on."""
        return self.listener

    def spawn(self, slot: int) -> int:
        """Fork a worker of the current generation into ``slot``."""
        listener = self.listener_for(slot)
        master_pid = os.getpid()

        def run_worker() -> None:
            assert self.inbox is not None
            self.inbox.close()
            self.WORKER(listener, master_pid, slot).run()

        pid = fork_child(run_worker)
        self.workers[pid] = (self.generation, slot)
        return pid

    def run(self) -> int:
        """The master loop: wait for a signal or a timer, handle it; returns the exit status."""
        self.start()
        while not (self.stopping and not self.workers):
            self.wait_for_events()
            assert self.inbox is not None
            for signum in self.inbox.take():
                self.handle(signum)
            self.reap()
            self.run_timers()
        self.close_listener()
        return 0

    def wait_for_events(self) -> None:
        """Sleep until a signal arrives or MASTER_TICK passes."""
        assert self.inbox is not None
        select.select([self.inbox.read_end], [], [], MASTER_TICK)

    def handle(self, signum: int) -> None:
        """One recorded signal (CHLD is handled by :meth:`reap` on every turn)."""
        if signum == FAST:
            self.stop_fast()
        elif signum == GRACEFUL and not self.stopping:
            self.stop_gracefully()
        elif signum == RELOAD and not self.stopping:
            self.reload()

    def reap(self) -> None:
        """Collect every dead child; schedule a replacement for a current-generation worker."""
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.on_child_exit(pid)

    def on_child_exit(self, pid: int) -> None:
        """A child was reaped: replace it if it was a current worker and we are not stopping."""
        generation, slot = self.workers.pop(pid, (-1, -1))
        if generation == self.generation and not self.stopping:
            self.pending_respawns.append((time.monotonic() + self.RESPAWN_DELAY, slot))

    def run_timers(self) -> None:
        """Due respawns; the fast stop's SIGKILL."""
        now = time.monotonic()
        due = [slot for when, slot in self.pending_respawns if when <= now]
        self.pending_respawns = [(w, s) for w, s in self.pending_respawns if w > now]
        for slot in due:
            if not self.stopping:
                self.replace(slot)
        if self.stopping == "fast" and now >= self.kill_at:
            self.signal_workers(signal.SIGKILL)

    def replace(self, slot: int) -> None:
        """Fork the replacement of a dead worker."""
        self.spawn(slot)

    def reload(self) -> None:
        """HUP: fork the new generation first (same socket), then retire the old one (F4)."""
        old = list(self.workers)
        self.generation += 1
        self.pending_respawns.clear()
        for slot in range(self.arguments.workers):
            self.spawn(slot)
        for pid in old:
            self.send(pid, WORKER_GRACEFUL)

    def stop_gracefully(self) -> None:
        """TERM: workers finish what they have; the listener stays until they are gone (F1)."""
        self.stopping = "graceful"
        self.signal_workers(WORKER_GRACEFUL)

    def stop_fast(self) -> None:
        """INT: workers exit now (CONT wakes a stopped one); SIGKILL after FAST_STOP_GRACE."""
        self.stopping = "fast"
        self.kill_at = time.monotonic() + FAST_STOP_GRACE
        self.signal_workers(WORKER_FAST)
        self.signal_workers(signal.SIGCONT)

    def signal_workers(self, signum: int) -> None:
        """Send ``signum`` to every worker this master still has."""
        for pid in list(self.workers):
            self.send(pid, signum)

    @staticmethod
    def send(pid: int, signum: int) -> None:
        """kill(); a worker that already exited is not an error."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    def close_listener(self) -> None:
        """The master's own copy, just before it exits."""
        if self.listener is not None:
            self.listener.close()


def main(master_class: type[Master] = Master, doc: str | None = __doc__) -> None:
    """Parse the command line and run ``master_class`` until it stops."""
    arguments = parse_arguments(doc or "")
    sys.exit(master_class(arguments).run())


if __name__ == "__main__":
    main()
