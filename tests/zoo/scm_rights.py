"""scm_rights — a CORRECT Node-cluster-SCHED_NONE-like server: the listener is sent, not inherited.

Design:
    The master binds the listening socket. For each worker it makes a Unix socketpair and forks;
    the child closes its inherited copy of the listener at once, closes every master end of every
    channel (its own and, inherited, its siblings' — else a dead master's channel would never read
    EOF while a sibling lives, nginx §1.8), and then receives the listener from the master over
    its channel with SCM_RIGHTS (K16), exactly as a Node ``cluster`` worker gets the listening
    handle from the primary. Workers wait in a non-exclusive epoll on the listener and on the
    channel (libuv style: every idle worker wakes per connection, J1) and accept non-blocking.

    The channel is the only way the master talks to a worker: ``G`` asks for a graceful stop (stop
    accepting at once, finish the connection in hand, exit). EOF on the channel means the master
    is gone: the worker exits (Node's ``disconnect`` → ``process.exit``).

Freedoms taken (DOMAIN §9):
    F1 early — on a graceful stop the master closes its listener when it has told the workers.
    F2 early — a worker told ``G`` closes its listener copy at once.
    F3 wait — an accepted silent client is waited for up to READ_TIMEOUT.
    F5 — workers do not inherit the listener; it is sent over SCM_RIGHTS after fork.
    F7 — a worker notices its master's death by its channel reading EOF (immediate when idle,
        after the connection in hand otherwise).
    F8 — on a graceful stop the master tells the workers and exits without waiting for them.

Signals (to the master, the bundled Node supervisor's):
    HUP  reload: fork a new generation, then ``G`` to the old one (Node's rolling restart).
    TERM graceful stop: ``G`` to every worker, close the listener, exit at once (F8).
    INT  fast stop: TERM and CONT to every worker, SIGKILL after 1 s, then exit.

Workers: TERM = exit at once; HUP, INT ignored (the master decides).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

if __package__ in (None, ""):  # run as a file: make ``tests.zoo`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.zoo.command_line import HOST, Arguments, parse_arguments
from tests.zoo.one_shot_http import serve_connection
from tests.zoo.select_herd import SignalInbox, fork_child, unblock_lifecycle_signals

RELOAD, GRACEFUL, FAST = signal.SIGHUP, signal.SIGTERM, signal.SIGINT
STOP_GRACEFULLY = b"G"
READ_TIMEOUT = 5.0  # F3; the verifier holds a worker stopped for up to a second or two
FAST_STOP_GRACE = 1.0
BACKLOG = 128


@dataclass
class Worker:
    """Receives the listener over its channel, then serves until told ``G`` or orphaned."""

    channel: socket.socket
    listener: socket.socket | None = None
    stopping: bool = False

    def run(self) -> None:
        """The worker's life after fork (the inherited listener is already closed)."""
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        unblock_lifecycle_signals()
        message, fds, _, _ = socket.recv_fds(self.channel, 16, 1)
        if not fds or STOP_GRACEFULLY in message:
            return  # the master died, or stopped us, before we ever listened
        self.listener = socket.socket(fileno=fds[0])
        poller = select.epoll()
        poller.register(self.listener.fileno(), select.EPOLLIN)  # non-exclusive: a herd (J1)
        poller.register(self.channel.fileno(), select.EPOLLIN)
        while not self.stopping:
            for fd, _ in poller.poll():
                self.on_ready(fd)

    def on_ready(self, fd: int) -> None:
        """The channel spoke, or the listener has a connection."""
        if fd == self.channel.fileno():
            self.read_channel()
        elif self.listener is not None and not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return  # another worker took it (K4)
            conn.setblocking(True)
            serve_connection(conn, READ_TIMEOUT)

    def read_channel(self) -> None:
        """``G``: stop accepting and leave after the connection in hand. EOF: the master is gone."""
        message = self.channel.recv(64)
        if not message or STOP_GRACEFULLY in message:
            self.stopping = True
            if self.listener is not None:
                self.listener.close()  # F2 early


@dataclass
class Master:
    """Binds, forks, sends the listener to each worker, supervises."""

    arguments: Arguments
    listener: socket.socket | None = None
    channels: dict[int, socket.socket] = field(default_factory=dict)  # pid -> master end
    current: set[int] = field(default_factory=set)
    stopping: str = ""
    kill_at: float = 0.0
    inbox: SignalInbox | None = None

    def open_listener(self) -> socket.socket:
        """The listener the master keeps and sends to every worker."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, self.arguments.port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
        return sock

    def run(self) -> int:
        """Fork the workers; supervise until stopped."""
        self.listener = self.open_listener()
        self.inbox = SignalInbox((RELOAD, GRACEFUL, FAST, signal.SIGCHLD))
        for _ in range(self.arguments.workers):
            self.spawn()
        while not self.is_done():
            select.select([self.inbox.read_end], [], [], 0.25)
            for signum in self.inbox.take():
                self.handle(signum)
            self.reap()
            if self.stopping == "fast" and time.monotonic() >= self.kill_at:
                self.signal_workers(signal.SIGKILL)
        return 0

    def is_done(self) -> bool:
        """Graceful: as soon as the workers were told (F8). Fast: when they are gone."""
        return self.stopping == "graceful" or (self.stopping == "fast" and not self.channels)

    def spawn(self) -> None:
        """Fork a worker that does not inherit the listener (F5), then send it the listener."""
        assert self.listener is not None
        master_end, worker_end = socket.socketpair()
        listener, others = self.listener, [*self.channels.values(), master_end]

        def run_worker() -> None:
            assert self.inbox is not None
            listener.close()  # F5: the worker gets the listener only through its channel
            for channel in others:
                channel.close()
            self.inbox.close()
            Worker(worker_end).run()

        pid = fork_child(run_worker)
        worker_end.close()
        socket.send_fds(master_end, [b"L"], [self.listener.fileno()])
        self.channels[pid] = master_end
        self.current.add(pid)

    def handle(self, signum: int) -> None:
        """One recorded signal."""
        if signum == FAST:
            self.stopping = "fast"
            self.kill_at = time.monotonic() + FAST_STOP_GRACE
            self.signal_workers(signal.SIGTERM)
            self.signal_workers(signal.SIGCONT)
        elif signum == GRACEFUL and not self.stopping:
            self.stopping = "graceful"
            for pid in list(self.channels):
                self.tell(pid, STOP_GRACEFULLY)
            assert self.listener is not None
            self.listener.close()
        elif signum == RELOAD and not self.stopping:
            old = list(self.current)
            self.current.clear()
            for _ in range(self.arguments.workers):
                self.spawn()
            for pid in old:
                self.tell(pid, STOP_GRACEFULLY)

    def tell(self, pid: int, message: bytes) -> None:
        """Write to a worker's channel (a full or closed channel is not an error)."""
        with contextlib.suppress(OSError):
            self.channels[pid].send(message)

    def reap(self) -> None:
        """Collect dead workers; respawn a current one unless stopping (Node: cluster 'exit')."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            channel = self.channels.pop(pid, None)
            if channel is not None:
                channel.close()
            if pid in self.current:
                self.current.discard(pid)
                if not self.stopping:
                    self.spawn()

    def signal_workers(self, signum: int) -> None:
        """kill() every worker."""
        for pid in list(self.channels):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)


def main(master_class: type[Master] = Master, doc: str | None = __doc__) -> None:
    """Parse the command line and run ``master_class``."""
    sys.exit(master_class(parse_arguments(doc or "")).run())


if __name__ == "__main__":
    main()
