"""reexec_master — a CORRECT prefork server whose master re-executes itself on reload.

Design:
    The master binds one listening socket, clears its FD_CLOEXEC (so it survives ``execve``,
    K18/K20) and forks the workers. Workers block in ``accept()`` on the shared socket (kernel
    wake-one, FIFO among the waiters, K3); the socket carries SO_RCVTIMEO, so a blocking accept
    returns EAGAIN every ACCEPT_TICK and a worker can look at its stop flag without any signal
    interrupting a half-finished accept. Workers set ``PR_SET_PDEATHSIG`` (SIGKILL) right after
    fork, through ctypes' ``prctl``, and check ``getppid()`` once after setting it (the master may
    have died before): an orphan is killed by the kernel the instant its master dies.

    Reload re-executes the master's own program (same pid, so its workers stay its children and
    keep their parent-death signal: a thread that calls execve does not terminate). The listener's
    fd number goes to the new image in ``ZOO_REEXEC_LISTENER`` and the old workers' pids in
    ``ZOO_REEXEC_OLD_WORKERS``; the new image forks a new generation on the inherited socket, then
    sends QUIT to the old workers. Signals are blocked across the exec, so one that arrives
    meanwhile waits for the new image's handlers instead of killing it.

Freedoms taken (DOMAIN §9):
    F1 early — on QUIT the master closes its listener at once.
    F2 late — a worker keeps its listener copy until it exits.
    F3 wait — an accepted silent client is waited for up to READ_TIMEOUT.
    F4 — a reload re-executes the master (K20), then forks first and retires the old workers.
    F7 — PR_SET_PDEATHSIG (immediate).
    K20 — re-exec on reload, the listener inherited without FD_CLOEXEC.

Signals (to the master, nginx's names):
    HUP  reload: re-exec; the new image forks a generation, then QUITs the old one.
    QUIT graceful stop: QUIT to the workers, close the listener, exit when they are gone.
    TERM fast stop: TERM and CONT to the workers (they exit at once), SIGKILL after 1 s.

Workers: QUIT = finish the request in hand and exit; TERM = exit at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field

if __package__ in (None, ""):  # run as a file: make ``tests.zoo`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.zoo.command_line import HOST, Arguments, parse_arguments
from tests.zoo.one_shot_http import serve_connection
from tests.zoo.select_herd import SignalInbox, fork_child, unblock_lifecycle_signals

RELOAD, GRACEFUL, FAST = signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM
LISTENER_ENV = "ZOO_REEXEC_LISTENER"
OLD_WORKERS_ENV = "ZOO_REEXEC_OLD_WORKERS"
ACCEPT_TICK = 0.25  # SO_RCVTIMEO of the listener: how often a blocked accept() returns
READ_TIMEOUT = 5.0  # F3; the verifier holds a worker stopped for up to a second or two
FAST_STOP_GRACE = 1.0
BACKLOG = 128
PR_SET_PDEATHSIG = 1
MASTER_SIGNALS = {RELOAD, GRACEFUL, FAST, signal.SIGCHLD}


def set_parent_death_signal(signum: int) -> None:
    """prctl(PR_SET_PDEATHSIG, signum): the kernel sends ``signum`` when our parent dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


@dataclass
class Worker:
    """A blocking accept() on the inherited socket, one connection at a time."""

    listener: socket.socket
    master_pid: int
    quitting: bool = False

    def run(self) -> None:
        """Serve until QUIT."""
        set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != self.master_pid:
            return  # the master died before PDEATHSIG was in place
        signal.signal(FAST, lambda *_: os._exit(0))
        signal.signal(RELOAD, signal.SIG_IGN)
        signal.signal(GRACEFUL, self.on_quit)
        unblock_lifecycle_signals()
        while not self.quitting:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, TimeoutError):
                continue  # SO_RCVTIMEO expired: look at the flag again
            serve_connection(conn, READ_TIMEOUT)

    def on_quit(self, _signum: int, _frame: object) -> None:
        """QUIT: leave after the connection in hand (an accept in progress is retried, PEP 475,
        and then times out within ACCEPT_TICK)."""
        self.quitting = True


@dataclass
class Master:
    """Forks workers on its listener; re-executes itself on HUP."""

    arguments: Arguments
    listener: socket.socket | None = None
    workers: dict[int, bool] = field(default_factory=dict)  # pid -> is of the current image
    stopping: str = ""
    kill_at: float = 0.0
    inbox: SignalInbox | None = None

    WORKER = Worker

    def open_listener(self) -> socket.socket:
        """Bind a new listener, or adopt the one a previous image left in LISTENER_ENV."""
        inherited = os.environ.pop(LISTENER_ENV, "")
        if inherited:
            return socket.socket(fileno=int(inherited))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        timeout = struct.pack("ll", int(ACCEPT_TICK), int(ACCEPT_TICK % 1 * 1_000_000))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeout)
        sock.bind((HOST, self.arguments.port))
        sock.listen(BACKLOG)
        sock.set_inheritable(True)  # K20: survive the re-exec
        return sock

    def adopt_old_workers(self) -> None:
        """After a re-exec: the previous image's workers are still our children; retire them."""
        for pid in filter(None, os.environ.pop(OLD_WORKERS_ENV, "").split(",")):
            self.workers[int(pid)] = False
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), GRACEFUL)

    def run(self) -> int:
        """Start (or resume after a re-exec) and loop until stopped."""
        self.listener = self.open_listener()
        self.inbox = SignalInbox(tuple(MASTER_SIGNALS))
        signal.pthread_sigmask(signal.SIG_UNBLOCK, MASTER_SIGNALS)  # blocked across a re-exec
        for _ in range(self.arguments.workers):
            self.spawn()
        self.adopt_old_workers()  # F4: the new generation first, then QUIT to the old one
        while not (self.stopping and not self.workers):
            select.select([self.inbox.read_end], [], [], 0.25)
            for signum in self.inbox.take():
                self.handle(signum)
            self.reap()
            if self.stopping == "fast" and time.monotonic() >= self.kill_at:
                self.signal_workers(signal.SIGKILL)
        return 0

    def spawn(self) -> None:
        """Fork a worker on the listener."""
        listener, master_pid = self.listener, os.getpid()
        assert listener is not None

        def run_worker() -> None:
            assert self.inbox is not None
            self.inbox.close()
            self.WORKER(listener, master_pid).run()

        self.workers[fork_child(run_worker)] = True

    def handle(self, signum: int) -> None:
        """One recorded signal."""
        if signum == FAST:
            self.stopping = "fast"
            self.kill_at = time.monotonic() + FAST_STOP_GRACE
            self.signal_workers(signal.SIGTERM)
            self.signal_workers(signal.SIGCONT)
        elif signum == GRACEFUL and not self.stopping:
            self.stopping = "graceful"
            self.signal_workers(GRACEFUL)
            assert self.listener is not None
            self.listener.close()  # F1 early: the workers' copies keep the queue
        elif signum == RELOAD and not self.stopping:
            self.reexec()

    def reexec(self) -> None:
        """K20: exec our own program with the listener's fd number and the workers' pids."""
        assert self.listener is not None
        assert self.inbox is not None
        signal.pthread_sigmask(signal.SIG_BLOCK, MASTER_SIGNALS)
        self.inbox.close()
        os.environ[LISTENER_ENV] = str(self.listener.fileno())
        os.environ[OLD_WORKERS_ENV] = ",".join(str(pid) for pid in self.workers)
        os.execv(sys.executable, [sys.executable, *sys.argv])

    def reap(self) -> None:
        """Collect dead children; replace a current worker at once unless stopping."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            current = self.workers.pop(pid, False)
            if current and not self.stopping:
                self.spawn()

    def signal_workers(self, signum: int) -> None:
        """kill() every worker (old and current)."""
        for pid in list(self.workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)


def main(master_class: type[Master] = Master, doc: str | None = __doc__) -> None:
    """Parse the command line and run ``master_class`` (also after a re-exec)."""
    sys.exit(master_class(parse_arguments(doc or "")).run())


if __name__ == "__main__":
    main()
