"""A worker: set itself up after ``fork()``, then serve HTTP on an epoll loop until told to stop.

Start-up order follows nginx's ``ngx_worker_process_init``: the parent-death signal first (so a
master that dies from here on takes the worker with it), then the check that the master did not die
before that (``getppid()``), the worker's own signal handlers, closing what the master holds but the
worker must not (the master's poller and pipe, other workers' channels, other slots' reuseport
sockets, and in passfd mode every listener), the privilege drop, and only then the first accept.

The loop is single-threaded and non-blocking: the acceptor strategy (:mod:`.acceptors`) decides
when the listening sockets are in the epoll set; connections are served by :mod:`.http` sessions.
A worker never holds more than ``worker_connections`` connections, and when it is full (always, for
a synchronous worker) its responses say ``Connection: close`` so that no keep-alive client parks on
a worker while others wait in the queue.

Stopping (nginx's worker signals): QUIT is graceful — stop accepting, close idle keep-alive
connections and connections that sent nothing (after :data:`FIRST_BYTE_GRACE`), finish requests in
progress, exit when none is left or ``graceful_timeout`` has passed; TERM/INT exit at once. A
worker also exits at once when its master is gone (``PR_SET_PDEATHSIG`` plus a ``getppid()`` check
every :data:`TICK`).

Discussion:
    *Never-used connections on a graceful stop.* nginx does not count a connection that has not
    sent its first request as idle, so a graceful stop waits for ``client_header_timeout`` (60 s,
    F3); gunicorn waits ``graceful_timeout`` (30 s). Closing such a connection the instant
    QUIT arrives would race with a request already in flight on loopback, so it is closed once it
    is :data:`FIRST_BYTE_GRACE` old with nothing received.
"""

from __future__ import annotations

import enum
import logging
import os
import select
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from forkshare.impl.accept_mutex import AcceptMutex
from forkshare.impl.acceptors import (
    Acceptor,
    BlockingAcceptor,
    ExclusiveAcceptor,
    MutexAcceptor,
    PassfdAcceptor,
    PollAcceptor,
    ReuseportAcceptor,
)
from forkshare.impl.errors import WORKER_EXIT_FATAL, WORKER_EXIT_OK, PrivilegeError
from forkshare.impl.http import Responses, Session
from forkshare.impl.listeners import Listener
from forkshare.impl.options import Options
from forkshare.impl.passfd import Receiver
from forkshare.impl.process import drop_privileges, set_parent_death_signal, set_title
from forkshare.impl.signals import WORKER_IGNORED, WORKER_SIGNALS, Intent, SignalInbox
from forkshare.impl.trace import Trace

log = logging.getLogger("forkshare.impl")

TICK: Final = 0.5  # timers and the parent check run at least this often
QUIT_TICK: Final = 0.05  # the graceful sweep's period while draining
FIRST_BYTE_GRACE: Final = 0.3
RECV_SIZE: Final = 65536


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What the master hands a freshly forked worker."""

    slot: int
    generation: int
    master_pid: int
    options: Options
    listeners: Sequence[Listener]
    trace: Trace
    mutex: AcceptMutex | None
    channel: socket.socket | None


class State(enum.Enum):
    """The worker's life: serving, draining after QUIT, done."""

    RUNNING = "running"
    QUITTING = "quitting"
    DONE = "done"


class Connection:
    """One client connection and its timers."""

    __slots__ = ("deadline", "fd", "opened", "out", "peer", "registered", "session", "sock")

    def __init__(self, sock: socket.socket, peer: tuple[str, int] | str, now: float) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.peer = peer
        self.session = Session()
        self.out = b""
        self.registered = 0  # the epoll mask currently registered, 0 when not in the set
        self.opened = now
        self.deadline = now

    @property
    def peer_text(self) -> str:
        """``127.0.0.1:PORT`` as in the trace."""
        if isinstance(self.peer, str):
            return self.peer
        return f"{self.peer[0]}:{self.peer[1]}"

    @property
    def is_idle(self) -> bool:
        """Nothing started and nothing to send: safe to close on a graceful stop."""
        return not self.session.buffer and not self.out


class Worker:
    """The event loop of one worker process (see the module docstring)."""

    def __init__(self, spec: WorkerSpec, inbox: SignalInbox) -> None:
        self.spec = spec
        self.pid = os.getpid()
        self.trace = spec.trace
        self.inbox = inbox
        self.epoll = select.epoll()
        self.connections: dict[int, Connection] = {}
        self.capacity = spec.options.worker_connections
        self.responses = Responses(self.pid, spec.generation, spec.slot)
        self.state = State.RUNNING
        self.now = time.monotonic()
        self.quit_deadline = 0.0
        self.next_tick = self.now + TICK
        self.acceptor = self._make_acceptor()
        self.epoll.register(inbox.fileno, select.EPOLLIN)

    def _make_acceptor(self) -> Acceptor:
        spec = self.spec
        mode = spec.options.mode
        if mode == "passfd":
            assert spec.channel is not None
            return PassfdAcceptor(self, Receiver(spec.channel))
        if mode == "mutex":
            assert spec.mutex is not None
            return MutexAcceptor(self, spec.listeners, spec.mutex)
        kinds: dict[str, type[Acceptor]] = {
            "blocking": BlockingAcceptor,
            "poll": PollAcceptor,
            "exclusive": ExclusiveAcceptor,
            "reuseport": ReuseportAcceptor,
        }
        return kinds[mode](self, spec.listeners)

    def room(self) -> int:
        """Connections this worker may still take (0 when full or stopping)."""
        if self.state is not State.RUNNING:
            return 0
        return self.capacity - len(self.connections)

    def run(self) -> int:
        """Serve until stopped; returns the exit status."""
        acceptor, connections, inbox_fd = self.acceptor, self.connections, self.inbox.fileno
        self.next_tick = self.now + TICK
        while self.state is not State.DONE:
            acceptor.arm(self.now)
            wait = acceptor.timeout(max(0.0, self.next_tick - self.now), self.now)
            events = acceptor.wait(wait)
            self.now = time.monotonic()
            for fd, mask in events:
                connection = connections.get(fd)
                if connection is not None:
                    self._on_io(connection, mask)
                elif fd == inbox_fd:
                    self._on_signals()
                elif fd in acceptor.fds:
                    acceptor.on_ready(fd, self.now)
            acceptor.after_events()
            if self.now >= self.next_tick:
                self._tick()
                self.next_tick = self.now + (TICK if self.state is State.RUNNING else QUIT_TICK)
        return self._finish()

    # -- connections ---------------------------------------------------------------------------

    def add_connection(self, sock: socket.socket, peer: tuple[str, int] | str) -> None:
        """Own an accepted socket; try to read at once (the request has usually arrived)."""
        sock.setblocking(False)
        connection = Connection(sock, peer, self.now)
        connection.deadline = self.now + self.spec.options.header_timeout
        self.connections[connection.fd] = connection
        self._read(connection)

    def _on_io(self, connection: Connection, mask: int) -> None:
        if mask & select.EPOLLOUT:
            self._write(connection)
        elif mask & (select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP):
            self._read(connection)

    def _read(self, connection: Connection) -> None:
        try:
            data = connection.sock.recv(RECV_SIZE)
        except BlockingIOError:
            self._want(connection, select.EPOLLIN)
            return
        except OSError:
            self._close(connection)
            return
        if not data:
            self._close(connection)
            return
        session = connection.session
        started = not session.buffer
        keep = self.state is State.RUNNING and len(self.connections) < self.capacity
        out, close = session.feed(data, self.responses, keep)
        if self.trace.enabled:
            for status in session.statuses:
                self.trace.emit("respond", peer=connection.peer_text, status=status)
        if out:
            connection.out = out
            if close:
                connection.deadline = -1.0  # close once written
            elif session.buffer:
                connection.deadline = self.now + self.spec.options.header_timeout
            else:
                connection.deadline = self.now + self.spec.options.keepalive_timeout
            self._write(connection)
        else:
            if session.buffer and started:
                connection.deadline = self.now + self.spec.options.header_timeout
            self._want(connection, select.EPOLLIN)

    def _write(self, connection: Connection) -> None:
        try:
            sent = connection.sock.send(connection.out)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._close(connection)
            return
        connection.out = connection.out[sent:]
        if connection.out:
            self._want(connection, select.EPOLLOUT)
        elif connection.deadline < 0 or self.state is State.QUITTING:
            self._close(connection)
        else:
            self._want(connection, select.EPOLLIN)

    def _want(self, connection: Connection, mask: int) -> None:
        if connection.registered == mask:
            return
        if connection.registered:
            self.epoll.modify(connection.fd, mask)
        else:
            self.epoll.register(connection.fd, mask)
        connection.registered = mask

    def _close(self, connection: Connection) -> None:
        # Unregister explicitly: epoll tracks open file descriptions, and in passfd mode the
        # master may still hold a copy, which would keep a stale registration alive.
        if connection.registered:
            self.epoll.unregister(connection.fd)
        connection.sock.close()
        del self.connections[connection.fd]

    # -- timers, signals, stopping -------------------------------------------------------------

    def _tick(self) -> None:
        if os.getppid() != self.spec.master_pid:
            log.warning("worker %d: master %d is gone, exiting", self.pid, self.spec.master_pid)
            self.state = State.DONE
            return
        for connection in list(self.connections.values()):
            if 0 <= connection.deadline <= self.now:
                self._expire(connection)
        if self.state is State.QUITTING:
            self._sweep()

    def _expire(self, connection: Connection) -> None:
        if connection.session.buffer and not connection.out:
            # A started request that did not complete in time: 408 (slow client).
            connection.session.buffer = b""
            connection.out = Responses.error(408)
            connection.deadline = -1.0
            self.trace.emit("respond", peer=connection.peer_text, status=408)
            self._write(connection)
        else:
            self._close(connection)

    def _on_signals(self) -> None:
        for intent, signum in self.inbox.take():
            self.trace.emit("signal", signal=signal.Signals(signum).name.removeprefix("SIG"))
            if intent is Intent.TERMINATE:
                self.state = State.DONE
            elif intent is Intent.QUIT and self.state is State.RUNNING:
                self._begin_quit()

    def _begin_quit(self) -> None:
        self.state = State.QUITTING
        self.next_tick = self.now + QUIT_TICK
        self.quit_deadline = self.now + self.spec.options.graceful_timeout
        set_title(f"forkshare: worker {self.spec.slot} gen {self.spec.generation} shutting down")
        self.acceptor.stop()
        self._sweep()

    def _sweep(self) -> None:
        """During a graceful stop: close what is idle, and stop when nothing is left."""
        for connection in list(self.connections.values()):
            never_used = connection.session.served == 0
            if connection.is_idle and (
                not never_used or self.now - connection.opened >= FIRST_BYTE_GRACE
            ):
                self._close(connection)
        if not self.connections or self.now >= self.quit_deadline:
            self.state = State.DONE

    def _finish(self) -> int:
        self.acceptor.stop()
        for connection in list(self.connections.values()):
            self._close(connection)
        self.epoll.close()
        return WORKER_EXIT_OK


def run_worker(spec: WorkerSpec, release_master_resources: Callable[[], None]) -> int:
    """The whole life of a worker process, from just after ``fork()``; returns its exit status.

    Args:
        spec: the worker's slot, generation, sockets and options.
        release_master_resources: closes what the master holds and this worker must not keep
            (the master's poller and signal pipe, other channels, sockets of other slots).
    """
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != spec.master_pid:  # the master died before prctl took effect
        return WORKER_EXIT_OK
    release_master_resources()
    inbox = SignalInbox(WORKER_SIGNALS)
    inbox.install()
    for signum in WORKER_IGNORED:
        signal.signal(signum, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    set_title(f"forkshare: worker {spec.slot} gen {spec.generation}")
    options = spec.options
    try:
        if options.user is not None:
            drop_privileges(options.user, options.group)
    except PrivilegeError as error:
        log.error("worker %d: %s", os.getpid(), error)
        return WORKER_EXIT_FATAL
    return Worker(spec, inbox).run()
