"""The model's invariants: named predicates, each with the one-line claim it checks.

The first is the type invariant (every reference points at something that exists); the rest are
the safety properties (P1–P23) that a state can violate. Each claim is printed next to its proof
status in the docs and by ``forkshare prove``. What an observer outside the server can check of
each one is in :mod:`forkshare.model.monitors`; the timed properties the verifier adds are in
:mod:`forkshare.model.liveness`.

Discussion:
    *Properties that needed nginx's way to hold, and what became of them.* The first model closed
    the master's listener at once on QUIT, closed a worker's listener at once when it acted on
    QUIT, and let a master exit only after its last worker. ``no_listener_after_shutdown`` and
    ``reuseport_queue_has_consumer`` held only because of that order; they are now stated so
    they hold whichever way the server closes (F1, F2, F8): the first is judged once every process
    is gone, the second only while the service runs. ``orphans_exit_with_master`` forbade every
    step of an orphan; it now forbids what matters, an orphan *accepting*, and only when the
    server claims its workers notice the master's death at once (bound 0). An orphan that polls
    getppid() (gunicorn) may accept until it notices; the verifier holds it to its bound instead
    (``orphans_exit_within_bound``). Answering a request in hand after the master's death is not
    a violation. Two properties were added: ``requests_in_hand_are_answered`` (a graceful stop or
    reload must not drop requests in hand, whatever the order of exits) and
    ``no_leaked_listener`` (a helper process must not hold the listener).
"""

from __future__ import annotations

from forkshare.model.config import Config, Mode
from forkshare.model.state import Fate, Phase, Shutdown, System
from forkshare.model.table import Invariant


def type_ok(config: Config, state: System) -> bool:
    """References are well formed: fds name listening sockets, queued connections sit in exactly
    their socket's queue, owners are processes, parents of workers are masters or init."""
    pids = {p.pid for p in state.processes}
    queued = [cid for lst in state.listeners for cid in lst.queue]
    if len(queued) != len(set(queued)):
        return False
    for proc in state.processes:
        if any(not (0 <= sid < len(state.listeners)) for sid in proc.fds):
            return False
        if proc.phase is Phase.DEAD and (proc.fds or proc.holds_mutex):
            return False
    for conn in state.connections:
        in_queue = conn.fate is Fate.QUEUED
        if in_queue != (conn.cid in queued):
            return False
        if in_queue and conn.cid not in state.listener(conn.listener).queue:
            return False
        if conn.fate is Fate.ACCEPTED and conn.owner not in pids:
            return False
        if conn.fate is Fate.DEFERRED and not _is_listening(state, conn.listener):
            return False
    return True


def _is_listening(state: System, sid: int) -> bool:
    return 0 <= sid < len(state.listeners) and state.listener(sid).listening


def at_most_one_mutex_holder(config: Config, state: System) -> bool:
    """At most one process believes it holds the accept mutex, and its pid is in the lock word."""
    believers = [p.pid for p in state.processes if p.holds_mutex]
    return len(believers) <= 1 and all(pid == state.mutex for pid in believers)


def mutex_holder_is_alive(config: Config, state: System) -> bool:
    """The accept mutex is free or held by a process that exists (a zombie is force-unlocked when reaped)."""
    return state.mutex == 0 or state.process(state.mutex) is not None


def accepted_at_most_once(config: Config, state: System) -> bool:
    """Every connection is returned by accept() at most once, and never while it is still queued."""
    return all(
        c.accepts <= 1 and (c.fate is not Fate.QUEUED or c.accepts == 0) for c in state.connections
    )


def queue_within_backlog(config: Config, state: System) -> bool:
    """No accept queue holds more than backlog+1 connections: the kernel drops further SYNs."""
    return all(len(lst.queue) <= lst.backlog + 1 for lst in state.listeners)


def held_listener_is_listening(config: Config, state: System) -> bool:
    """A listening socket stays open while any process holds a descriptor for it."""
    return all(state.listener(sid).listening for p in state.processes for sid in p.fds)


def listening_listener_is_held(config: Config, state: System) -> bool:
    """A socket listens only while some process holds it: the last close resets its queue."""
    return all(not lst.listening or bool(state.holders(lst.sid)) for lst in state.listeners)


def no_queued_connection_lost(config: Config, state: System) -> bool:
    """No queued connection is reset by a worker's death or a reload; only a shutdown discards a queue."""
    return all(c.fate is not Fate.ABORTED for c in state.connections)


def port_keeps_listening(config: Config, state: System) -> bool:
    """While a master runs with no shutdown asked for, the port has a listening socket (no refusal window)."""
    if not state.service_running:
        return True
    return any(lst.listening and lst.port == 0 for lst in state.listeners)


def listeners_keep_identity(config: Config, state: System) -> bool:
    """A socket a master opened stays open until a shutdown: reload and upgrade keep the same sockets."""
    return not any(lst.closed_early for lst in state.listeners)


def no_listener_after_shutdown(config: Config, state: System) -> bool:
    """Once a shutdown has finished and every process is gone, no socket listens on the port."""
    if state.usage.shutdowns == 0 or state.processes:
        return True
    return not any(lst.listening for lst in state.listeners)


def orphans_exit_with_master(config: Config, state: System) -> bool:
    """No worker accepts a connection after its master died (workers notice the death at once),
    unless it had been told to stop before (a master that exits first on a graceful stop, F8:
    the worker may still take one before it acts on the stop, as any quitting worker may)."""
    return all(p.orphan_accepts == 0 for p in state.processes)


def requests_in_hand_are_answered(config: Config, state: System) -> bool:
    """A graceful stop or a reload answers every request a worker has in hand; only SIGKILL, a
    fast stop or the master's SIGKILL may reset one."""
    return all(c.fate is not Fate.ABANDONED for c in state.connections)


def no_leaked_listener(config: Config, state: System) -> bool:
    """Only masters and workers hold listening sockets: a helper the server starts holds none."""
    return not any(p.is_helper and p.fds for p in state.processes)


def master_never_accepts(config: Config, state: System) -> bool:
    """Only workers call accept(), except in passfd mode, where only masters do."""
    passfd = config.mode is Mode.PASSFD
    return all(c.by_master == passfd for c in state.connections if c.accepts)


def reuseport_queue_has_consumer(config: Config, state: System) -> bool:
    """While the service runs, every listening reuseport socket has a live worker of its slot, or
    a respawn on the way. (During a shutdown a clone may outlive its worker in a sibling that has
    not closed it yet; that is expected and the queue is discarded with the last close.)"""
    if not state.service_running:
        return True
    for lst in state.listeners:
        if lst.listening and lst.reuseport and not _has_consumer(config, state, lst.slot, lst.sid):
            return False
    return True


def _has_consumer(config: Config, state: System, slot: int, sid: int) -> bool:
    for proc in state.processes:
        if proc.is_worker and proc.is_alive and proc.slot == slot and sid in proc.fds:
            return True
    return any(
        m.is_alive and m.shutdown is Shutdown.NONE and slot not in m.abandoned
        for m in state.masters
    )


def single_pending_upgrade(config: Config, state: System) -> bool:
    """At most two masters are alive, and one of them is the other's new binary (USR2 is ignored otherwise)."""
    masters = state.live_masters
    if len(masters) <= 1:
        return True
    if len(masters) > 2:
        return False
    first, second = masters
    return second.parent == first.pid or first.parent == second.pid


def wakes_at_most_one(config: Config, state: System) -> bool:
    """One arriving connection wakes at most one waiting process (no thundering herd)."""
    return all(c.wakeups <= 1 for c in state.connections)


INVARIANTS: dict[str, Invariant] = {
    inv.name: inv
    for inv in (
        Invariant("type_ok", "References are well formed.", type_ok),
        Invariant(
            "at_most_one_mutex_holder",
            "At most one process holds the accept mutex, and its pid is in the lock word.",
            at_most_one_mutex_holder,
        ),
        Invariant(
            "mutex_holder_is_alive",
            "The accept mutex is free or held by a process that still exists.",
            mutex_holder_is_alive,
        ),
        Invariant(
            "accepted_at_most_once",
            "Every connection is accepted at most once, never while still queued.",
            accepted_at_most_once,
        ),
        Invariant(
            "queue_within_backlog",
            "No accept queue holds more than backlog+1 connections.",
            queue_within_backlog,
        ),
        Invariant(
            "held_listener_is_listening",
            "A listening socket stays open while any process holds it.",
            held_listener_is_listening,
        ),
        Invariant(
            "listening_listener_is_held",
            "A socket listens only while some process holds it.",
            listening_listener_is_held,
        ),
        Invariant(
            "listeners_keep_identity",
            "Reload and upgrade keep the master's listening sockets (same identity).",
            listeners_keep_identity,
        ),
        Invariant(
            "no_queued_connection_lost",
            "No queued connection is lost to a worker's death or a reload.",
            no_queued_connection_lost,
        ),
        Invariant(
            "port_keeps_listening",
            "From the first listen() until a shutdown, the port keeps listening.",
            port_keeps_listening,
        ),
        Invariant(
            "no_listener_after_shutdown",
            "After a shutdown no listening socket remains.",
            no_listener_after_shutdown,
        ),
        Invariant(
            "orphans_exit_with_master",
            "Under workers-exit (noticed at once), no worker accepts after its master died.",
            orphans_exit_with_master,
            applies=lambda config: config.orphans_accept_nothing,
        ),
        Invariant(
            "requests_in_hand_are_answered",
            "A graceful stop or a reload answers every request a worker has in hand.",
            requests_in_hand_are_answered,
        ),
        Invariant(
            "no_leaked_listener",
            "No helper process holds a listening socket.",
            no_leaked_listener,
        ),
        Invariant(
            "master_never_accepts",
            "Workers accept; the master accepts only in passfd mode.",
            master_never_accepts,
        ),
        Invariant(
            "reuseport_queue_has_consumer",
            "While the service runs, every reuseport queue has a live consumer or a pending respawn.",
            reuseport_queue_has_consumer,
        ),
        Invariant(
            "single_pending_upgrade",
            "At most one new binary is pending at a time.",
            single_pending_upgrade,
        ),
        Invariant(
            "wakes_at_most_one",
            "One connection wakes at most one worker (every mode but poll).",
            wakes_at_most_one,
            applies=lambda config: config.mode is not Mode.POLL,
        ),
    )
}
"""Every invariant of the model, by name: the single list the explorer, proofs, verifier and docs use."""


def violated(config: Config, state: System) -> tuple[str, ...]:
    """Names of the invariants that apply to ``config`` and fail in ``state``."""
    return tuple(
        name
        for name, inv in INVARIANTS.items()
        if inv.applies(config) and not inv.holds(config, state)
    )
