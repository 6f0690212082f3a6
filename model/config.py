"""What a server is configured to do, and how far an exploration may go.

The model is a specification, not one server's implementation: it forbids only what breaks a
named property and allows every way a correct server gets there (the freedoms F1–F10 of
:mod:`forkshare.model.freedoms`). Most freedoms are nondeterminism in the actions (an internal
step that may happen anywhere in its window). A field here is kept only where the truth of a
property depends on the choice (parent-death detection and its bound), where the choice is a
design the unsafe variants of :mod:`forkshare.model.variants` switch off, or where a field pins
a freedom that is otherwise left open (``None``: either way).

Discussion:
    *Pins default to "either".* ``defer_accept`` and ``workers_receive_listeners`` are ``None``
    by default: the model allows both ways, as the specification must. A profile that knows its
    server (or a discovered one) may pin them, which only removes states. The explorer explores
    the default, so the specification is what is checked and proved.

    *TCP_DEFER_ACCEPT is chosen per connection, not per listener.* A listener either sets the
    option or not, so "either" could be a choice made once at listen(). But every behaviour of a
    listener without the option is also one of a listener with it (a held-back connection may be
    admitted at once), so letting each connection be held back or not allows exactly the same
    observations with no flag on the socket, and explores a third fewer states.

    *Bounds live beside the configuration, not in the state.* An exploration (or a Hypothesis run)
    must stop somewhere, so every environment action that a tester could repeat forever (connect,
    kill, reload, …) is guarded by a budget. The alternative, leaving the model unbounded and
    letting the explorer cut, would make "enabled" mean different things to the explorer, the
    z3 encoding and the verifier; with the budget in the guard they all agree. The z3 encoding
    treats the budgets as unbounded (it proves the invariants for every number of steps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Mode(StrEnum):
    """How the workers share (or split) the listening socket (ARCHITECTURE.md "Sharing modes")."""

    BLOCKING = "blocking"
    """One shared socket; idle workers sleep in a blocking accept(): the kernel wakes one (K3)."""
    POLL = "poll"
    """One shared socket in every worker's non-exclusive epoll set: every idle worker wakes (K4)."""
    EXCLUSIVE = "exclusive"
    """One shared socket registered with EPOLLEXCLUSIVE: one worker wakes (K5, nginx ≥ 1.11.3)."""
    MUTEX = "mutex"
    """One shared socket; only the holder of the accept mutex waits on it (nginx accept_mutex on)."""
    REUSEPORT = "reuseport"
    """One SO_REUSEPORT socket per worker slot; the kernel hashes each SYN to one of them (K7)."""
    PASSFD = "passfd"
    """The master accepts and passes each connection to a worker with SCM_RIGHTS (Node cluster)."""


SHARED_MODES = frozenset({Mode.BLOCKING, Mode.POLL, Mode.EXCLUSIVE, Mode.MUTEX})
"""Modes in which every worker waits on the very same listening socket."""


class ParentDeath(StrEnum):
    """What workers do when their master dies (N3, P13, F7)."""

    WORKERS_EXIT = "workers-exit"
    """Workers notice (PR_SET_PDEATHSIG, a getppid() poll, or their IPC channel closing) and exit
    within ``Config.parent_death_bound``: gunicorn sync, Node cluster, forkshare."""
    ORPHANS_SERVE = "orphans-serve"
    """Workers are reparented to init and keep accepting on the inherited sockets: nginx."""


@dataclass(frozen=True, slots=True)
class Bounds:
    """How many times an exploration may perform each environment action (see Discussion)."""

    connections: int = 2
    starts: int = 1
    kills: int = 1
    master_kills: int = 0
    stops: int = 0
    reloads: int = 1
    upgrades: int = 0
    shutdowns: int = 0
    helpers: int = 0
    """Helper processes a master may start (a log shipper, a CGI): see ``no_leaked_listener``."""


@dataclass(frozen=True, slots=True)
class Config:
    """A server's configuration: the sharing mode, sizes and the policies real servers differ on."""

    mode: Mode = Mode.EXCLUSIVE
    workers: int = 2
    """Worker slots per generation (``worker_processes``, gunicorn ``-w``)."""
    worker_connections: int = 1
    """Connections one worker serves at once; 1 is a synchronous worker (gunicorn sync)."""
    backlog: int = 1
    """The listen() backlog; the kernel queues at most backlog+1 connections (K13)."""
    parent_death: ParentDeath = ParentDeath.WORKERS_EXIT
    parent_death_bound: float = 0.0
    """Seconds within which a worker notices its master's death and exits (F7). 0: at once
    (PR_SET_PDEATHSIG, an IPC channel closing), so an orphan accepts nothing; above 0 (a
    getppid() poll, gunicorn: timeout/2) an orphan may accept until it notices. The model is
    untimed: the bound is what the verifier holds the server to (``orphans_exit_within_bound``)."""
    force_unlock: bool = True
    """The master clears the accept mutex when it reaps its holder (nginx ngx_shmtx_force_unlock)."""
    respawn: bool = True
    """The master replaces a worker that died unexpectedly (nginx, gunicorn, Apache)."""
    reload_rebinds: bool = False
    """Reload closes the listening sockets and binds new ones (instead of keeping them)."""
    private_reuseport: bool = False
    """Reuseport sockets are created by each worker after fork, not by the master (gunicorn)."""
    workers_keep_all_clones: bool = True
    """Reuseport (F9): every worker keeps every clone it inherited, as nginx's do (N1); False: a
    worker closes the other slots' clones after fork (the reference server). No property depends
    on it; both are explored and proved. The verifier pins it from discovery (profile key
    ``reuseport_clones``): it decides how many sockets still listen once a worker is gone."""
    defer_accept: bool | None = None
    """TCP_DEFER_ACCEPT on the listeners (F6, K19): a connection is queued only once its first
    byte (or the defer timeout) arrives. None: either, for each connection (see Discussion)."""
    workers_receive_listeners: bool | None = None
    """Shared modes (F5): workers get the listener by inheritance through fork (False), or over
    a Unix socket with SCM_RIGHTS after fork (True, Node cluster SCHED_NONE). None: either."""
    graceful_waits_for_requests: bool = True
    """A worker stopping gracefully answers the requests it has in hand before it exits."""
    helpers_close_listeners: bool = True
    """A helper process the master starts closes the listening descriptors it inherited
    (FD_CLOEXEC before exec, or an explicit close)."""
    bounds: Bounds = field(default_factory=Bounds)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, not {self.workers}")
        if self.worker_connections < 1:
            raise ValueError(
                f"worker_connections must be at least 1, not {self.worker_connections}"
            )
        if self.backlog < 0:
            raise ValueError(f"backlog must not be negative, not {self.backlog}")
        if self.private_reuseport and self.mode is not Mode.REUSEPORT:
            raise ValueError("private_reuseport needs mode=reuseport")
        if self.parent_death_bound < 0:
            raise ValueError(
                f"parent_death_bound must not be negative, not {self.parent_death_bound}"
            )

    @property
    def is_shared(self) -> bool:
        """True when every worker accepts from one shared socket."""
        return self.mode in SHARED_MODES

    @property
    def orphans_accept_nothing(self) -> bool:
        """True when an orphan may not accept: workers exit at once when their master dies."""
        return self.parent_death is ParentDeath.WORKERS_EXIT and self.parent_death_bound == 0

    @property
    def master_holds_listeners(self) -> bool:
        """True when the master creates (and keeps) the listening sockets."""
        return not self.private_reuseport
