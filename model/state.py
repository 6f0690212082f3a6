"""The state of a prefork server as frozen values: processes, listening sockets, connections.

A :class:`System` is everything the model knows at one instant. It is immutable and hashable, so
the explorer can store millions of them and every action is a pure function from one state to a
set of successors. Identities are small integers: a pid for a process, a sid for a listening
socket, a cid for a client connection (cids count up in connection order, as clients do).

Discussion:
    *What a process holds is a set of socket ids, not an fd table with numbers.* Descriptor
    numbers are not part of any property we state (which process holds which open socket is, K1),
    and leaving them out keeps the state space small. The verifier reads the numbers from /proc
    and maps them to sockets.

    *The accept mutex is two facts, not one.* The shared lock word holds the holder's pid
    (nginx's shmtx, facts §1.5), and each process has its own belief that it holds it
    (``ngx_accept_mutex_held``). Keeping both is what makes "at most one holder" and "the holder is
    alive" claims that can fail, instead of consequences of the data type.

    *Closed listening sockets are kept, marked closed.* Their identity is what "reload keeps the
    listening sockets" is about, so a closed socket stays in the table with the reason it closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """A process's part in the server."""

    MASTER = "master"
    WORKER = "worker"
    HELPER = "helper"
    """A child the master starts for something else (a log shipper, a CGI): it never accepts."""


class Phase(StrEnum):
    """Where a process is in its life."""

    RUNNING = "running"
    EXITING = "exiting"
    """Graceful exit under way: no longer accepting, finishing the requests in progress."""
    DEAD = "dead"
    """Exited, not yet reaped by its master (a zombie). The kernel closed its descriptors."""


class Shutdown(StrEnum):
    """What a master was told to do with the whole server."""

    NONE = "none"
    GRACEFUL = "graceful"
    FAST = "fast"


class Fate(StrEnum):
    """Where a client connection is, as the client would find out."""

    DEFERRED = "deferred"
    """Handshake done on a TCP_DEFER_ACCEPT listener, kept out of the accept queue until its
    first byte (or the defer timeout) arrives (K19): connected for the client, not acceptable."""
    QUEUED = "queued"
    """Handshake done, waiting in a listening socket's accept queue (K12)."""
    ACCEPTED = "accepted"
    """Returned by accept(); owned by one process."""
    SERVED = "served"
    """The client got its response."""
    CLOSED = "closed"
    """Closed without a response, by the client or by a worker closing an idle connection."""
    RESET = "reset"
    """Reset after it was accepted: its process died with it in flight (SIGKILL, a fast stop, or
    the death of its master)."""
    ABANDONED = "abandoned"
    """Reset with its request in hand by a worker that was stopping gracefully."""
    ABORTED = "aborted"
    """Reset while queued, because its listening socket closed while the server was meant to run."""
    DISCARDED = "discarded"
    """Reset while queued, because its listening socket closed during a shutdown."""
    REFUSED = "refused"
    """Nothing listened on the port: the SYN got a RST (ECONNREFUSED)."""
    DROPPED = "dropped"
    """The accept queue was full: the SYN was dropped and the client times out (K14)."""


TERMINAL_FATES = frozenset(
    {
        Fate.SERVED,
        Fate.CLOSED,
        Fate.RESET,
        Fate.ABANDONED,
        Fate.ABORTED,
        Fate.DISCARDED,
        Fate.REFUSED,
        Fate.DROPPED,
    }
)


@dataclass(frozen=True, slots=True)
class Process:
    """One process: a master or a worker, with the listening sockets it holds descriptors for."""

    pid: int
    role: Role
    parent: int
    """The parent's pid; 0 once reparented to init (or for a master started from the shell)."""
    generation: int
    """Workers: the generation they were forked in. Masters: their current generation."""
    slot: int
    """Workers: their slot in the generation (the reuseport clone they serve). Masters: -1."""
    phase: Phase = Phase.RUNNING
    stopped: bool = False
    """SIGSTOPped: takes no step until SIGCONT."""
    fds: frozenset[int] = frozenset()
    """Sids of the listening sockets this process holds a descriptor for."""
    holds_mutex: bool = False
    """The process's own belief that it holds the accept mutex."""
    quit_requested: bool = False
    """Workers: told to exit gracefully (QUIT)."""
    terminate_requested: bool = False
    """Workers: told to exit now (a fast stop's TERM) while stopped; they act on it when continued."""
    orphan_accepts: int = 0
    """Workers: connections accepted after their master died."""
    master_killed: bool = False
    """Workers and helpers: their master died by SIGKILL (not by exiting after a stop)."""
    shutdown: Shutdown = Shutdown.NONE
    """Masters: the shutdown they were told to perform."""
    abandoned: frozenset[int] = frozenset()
    """Masters: slots of the current generation they will not refill (respawn disabled)."""

    @property
    def is_alive(self) -> bool:
        """True until the process exits (a zombie is not alive)."""
        return self.phase is not Phase.DEAD

    @property
    def is_master(self) -> bool:
        """True for a master process (including a new binary during an upgrade)."""
        return self.role is Role.MASTER

    @property
    def is_worker(self) -> bool:
        """True for a worker process."""
        return self.role is Role.WORKER

    @property
    def is_helper(self) -> bool:
        """True for a helper process (it never accepts)."""
        return self.role is Role.HELPER

    @property
    def was_told_to_stop(self) -> bool:
        """Workers: told to quit gracefully or to terminate, by a stop or a reload."""
        return self.quit_requested or self.terminate_requested

    @property
    def can_run(self) -> bool:
        """True when the process is alive and not stopped, so it can take a step."""
        return self.phase is not Phase.DEAD and not self.stopped


@dataclass(frozen=True, slots=True)
class Listener:
    """One listening socket (an open file description; K1) and its accept queue."""

    sid: int
    port: int
    """Index of the configured address it is bound to."""
    reuseport: bool
    """SO_REUSEPORT set before bind (then it is one member of the port's group, K7)."""
    slot: int
    """Reuseport: the worker slot it belongs to. Shared sockets: -1."""
    by_master: bool
    """Created by a master (True) or privately by a worker after fork (gunicorn --reuse-port)."""
    backlog: int
    queue: tuple[int, ...] = ()
    """Cids of the connections waiting to be accepted, oldest first (accept() is FIFO, E1)."""
    listening: bool = True
    """False once the last descriptor closed (then it never listens again)."""
    closed_early: bool = False
    """It was closed while a master was running with no shutdown asked for."""
    reuseaddr: bool = True
    """SO_REUSEADDR (nginx and gunicorn always set it)."""


@dataclass(frozen=True, slots=True)
class Connection:
    """One client connection, from the client's connect() to what the client finally saw."""

    cid: int
    fate: Fate
    listener: int
    """The sid it arrived on (queued, deferred, or accepted from); -1 when refused or dropped."""
    owner: int = 0
    """Pid of the process that owns it (accepted it, or received it by SCM_RIGHTS); 0 if none."""
    accepts: int = 0
    """How many accept() calls returned it."""
    by_master: bool = False
    """accept() was called by a master."""
    requested: bool = False
    """The client sent its request."""
    wakeups: int = 0
    """Processes woken by its arrival (every idle waiter in poll mode, one otherwise)."""
    held_back: bool = False
    """It arrived on a TCP_DEFER_ACCEPT listener and never entered the accept queue (K19): when
    that listener closes, the kernel drops it without telling the client, who finds out (RST)
    only when it sends."""


@dataclass(frozen=True, slots=True)
class Usage:
    """How often each bounded environment action was taken (see :class:`~forkshare.model.config.Bounds`)."""

    starts: int = 0
    failed_starts: int = 0
    kills: int = 0
    master_kills: int = 0
    stops: int = 0
    reloads: int = 0
    upgrades: int = 0
    shutdowns: int = 0
    helpers: int = 0


@dataclass(frozen=True, slots=True)
class System:
    """The whole server at one instant. Tuples are kept sorted by pid, sid and cid."""

    processes: tuple[Process, ...] = ()
    listeners: tuple[Listener, ...] = ()
    connections: tuple[Connection, ...] = ()
    mutex: int = 0
    """The accept mutex's shared lock word: the holder's pid, or 0 when free."""
    usage: Usage = Usage()
    _hash: int = field(default=0, init=False, repr=False, compare=False)
    """The hash, computed once: the explorer hashes every state several times (dict lookups)."""

    def __hash__(self) -> int:
        cached = self._hash
        if not cached:
            cached = hash(
                (self.processes, self.listeners, self.connections, self.mutex, self.usage)
            )
            object.__setattr__(self, "_hash", cached)
        return cached

    def process(self, pid: int) -> Process | None:
        """The process with this pid, if it is in the process table (alive or a zombie)."""
        for proc in self.processes:
            if proc.pid == pid:
                return proc
        return None

    def live(self, pid: int, role: Role) -> Process | None:
        """The process with this pid if it is alive and has ``role``, else None."""
        proc = self.process(pid)
        return proc if proc is not None and proc.role is role and proc.is_alive else None

    def listener(self, sid: int) -> Listener:
        """The listening socket with this sid (sids are indexes: sockets are never forgotten)."""
        return self.listeners[sid]

    def connection(self, cid: int) -> Connection:
        """The connection with this cid (cids are indexes)."""
        return self.connections[cid]

    @property
    def masters(self) -> tuple[Process, ...]:
        """Masters in the process table (alive or zombies)."""
        return tuple(p for p in self.processes if p.is_master)

    @property
    def live_masters(self) -> tuple[Process, ...]:
        """Masters that are alive."""
        return tuple(p for p in self.processes if p.is_master and p.is_alive)

    def children(self, pid: int) -> tuple[Process, ...]:
        """Processes whose parent is ``pid``."""
        return tuple(p for p in self.processes if p.parent == pid)

    def holders(self, sid: int) -> tuple[Process, ...]:
        """Processes holding a descriptor for listening socket ``sid``."""
        return tuple(p for p in self.processes if sid in p.fds)

    def owned(self, pid: int) -> tuple[Connection, ...]:
        """Accepted connections owned by ``pid``."""
        return tuple(c for c in self.connections if c.fate is Fate.ACCEPTED and c.owner == pid)

    def is_orphan(self, proc: Process) -> bool:
        """True for a worker whose master is gone (reparented to init)."""
        return proc.is_worker and self.process(proc.parent) is None

    def deferred_on(self, sid: int) -> tuple[Connection, ...]:
        """Connections held back by socket ``sid``'s TCP_DEFER_ACCEPT (K19)."""
        return tuple(c for c in self.connections if c.fate is Fate.DEFERRED and c.listener == sid)

    @property
    def service_running(self) -> bool:
        """True when some live master has not been told to shut down: the port is meant to listen."""
        return any(m.shutdown is Shutdown.NONE for m in self.live_masters)

    @property
    def next_pid(self) -> int:
        """The pid the next fork gets: above every pid in use, including a stale one in the mutex."""
        return 1 + max([self.mutex, *(p.pid for p in self.processes)])
