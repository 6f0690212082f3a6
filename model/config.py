"""What a server is configured to do, and how far an exploration may go.

The model is parameterised, not hard-wired: where real servers differ (facts §1, §2), the
difference is a field here (STYLE.md rule 4). The unsafe designs real servers have shipped are
named presets of these fields in :mod:`forkshare.model.variants`.

Discussion:
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
    """What workers do when their master dies (facts §1.8, §2.4, property P13)."""

    WORKERS_EXIT = "workers-exit"
    """Workers notice (PR_SET_PDEATHSIG or a parent check) and exit: gunicorn sync, forkshare."""
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
    force_unlock: bool = True
    """The master clears the accept mutex when it reaps its holder (nginx ngx_shmtx_force_unlock)."""
    respawn: bool = True
    """The master replaces a worker that died unexpectedly (nginx, gunicorn)."""
    reload_rebinds: bool = False
    """Reload closes the listening sockets and binds new ones (instead of keeping them)."""
    private_reuseport: bool = False
    """Reuseport sockets are created by each worker after fork, not by the master (gunicorn)."""
    quit_closes_unused: bool = True
    """On a graceful stop a worker closes its never-used connections at once (forkshare); False:
    it waits for their request or its timeout (nginx's client_header_timeout, 60 s)."""
    workers_keep_all_clones: bool = True
    """Reuseport: every worker keeps every clone it inherited, as nginx's do (N1); False: a worker
    closes the other slots' clones after fork (the reference server)."""
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

    @property
    def is_shared(self) -> bool:
        """True when every worker accepts from one shared socket."""
        return self.mode in SHARED_MODES

    @property
    def master_holds_listeners(self) -> bool:
        """True when the master creates (and keeps) the listening sockets."""
        return not self.private_reuseport
