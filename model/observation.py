"""What can be seen of a state from outside: the projection the verifier compares real servers with.

A real server is observed through /proc and its clients (facts §8): the process tree, which
processes hold which listening socket, the accept-queue lengths, who accepted each client
connection and what each client saw. Hidden state — the accept mutex's lock word, a worker's
belief that it holds it, a pending QUIT not yet acted on — is not part of the observation.
"""

from __future__ import annotations

from dataclasses import dataclass

from forkshare.model.state import Connection, Fate, Role, System


class Outcome:
    """What a client can tell about its connection (several fates look the same to it)."""

    PENDING = "pending"
    """Connected, no response yet (queued or accepted)."""
    SERVED = "served"
    CLOSED = "closed"
    RESET = "reset"
    REFUSED = "refused"
    TIMEOUT = "timeout"


_OUTCOMES: dict[Fate, str] = {
    Fate.DEFERRED: Outcome.PENDING,
    Fate.QUEUED: Outcome.PENDING,
    Fate.ACCEPTED: Outcome.PENDING,
    Fate.SERVED: Outcome.SERVED,
    Fate.CLOSED: Outcome.CLOSED,
    Fate.RESET: Outcome.RESET,
    Fate.ABANDONED: Outcome.RESET,
    Fate.ABORTED: Outcome.RESET,
    Fate.DISCARDED: Outcome.RESET,
    Fate.REFUSED: Outcome.REFUSED,
    Fate.DROPPED: Outcome.TIMEOUT,
}


def outcome(conn: Connection) -> str:
    """The client-visible outcome of ``conn``. A connection whose process died before the client
    sent anything ends with a FIN, not a RST (the kernel resets only when unread data is left),
    so the client sees it closed. One dropped while TCP_DEFER_ACCEPT held it back is silently
    forgotten by the kernel: its client still waits, until it sends and is reset (K19)."""
    if conn.fate is Fate.RESET and not conn.requested:
        return Outcome.CLOSED
    if is_silently_dropped(conn):
        return Outcome.PENDING
    return _OUTCOMES[conn.fate]


def is_silently_dropped(conn: Connection) -> bool:
    """True for a held-back connection whose listener closed before the client sent anything."""
    return conn.fate in (Fate.ABORTED, Fate.DISCARDED) and conn.held_back and not conn.requested


@dataclass(frozen=True, slots=True)
class ProcessView:
    """A process as /proc shows it."""

    pid: int
    role: Role
    parent: int
    """0 when reparented to init (an orphan, or a master started from the shell)."""
    alive: bool
    stopped: bool
    holds: frozenset[int]
    """Sids of the listening sockets its descriptors point at."""


@dataclass(frozen=True, slots=True)
class ListenerView:
    """A listening socket as /proc/net/tcp shows it."""

    sid: int
    reuseport: bool
    listening: bool
    queued: int
    """The accept queue's length (rx_queue of the LISTEN row, K11)."""


@dataclass(frozen=True, slots=True)
class ClientView:
    """A client connection as the client and /proc see it."""

    cid: int
    outcome: str
    owner: int
    """The pid holding the accepted connection (0 when none)."""
    wakeups: int
    """Processes its arrival woke; 0 when not measured."""
    requested: bool = False
    """The client sent its request (the tester knows)."""
    listener: int = -1
    """The listening socket it waits on, while it waits unaccepted (-1: not waiting, or not
    known: a real reuseport group does not say which member a client was hashed to)."""


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything observable of one state."""

    processes: tuple[ProcessView, ...]
    listeners: tuple[ListenerView, ...]
    clients: tuple[ClientView, ...]


def observe(state: System) -> Observation:
    """Project ``state`` onto what can be seen from outside."""
    return Observation(
        processes=tuple(
            ProcessView(p.pid, p.role, p.parent, p.is_alive, p.stopped, p.fds)
            for p in state.processes
        ),
        listeners=tuple(
            ListenerView(lst.sid, lst.reuseport, lst.listening, len(lst.queue))
            for lst in state.listeners
        ),
        clients=tuple(
            ClientView(
                c.cid,
                outcome(c),
                c.owner if c.fate is Fate.ACCEPTED else 0,
                c.wakeups,
                c.requested,
                c.listener if outcome(c) == Outcome.PENDING and c.fate is not Fate.ACCEPTED else -1,
            )
            for c in state.connections
        ),
    )
