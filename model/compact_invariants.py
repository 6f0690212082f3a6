"""The twin of every invariant of :data:`forkshare.model.invariants.INVARIANTS`, on canonical
compact states (where the process with pid ``k`` is ``processes[k - 1]``).

Each function has the name of its model invariant and computes the same truth value (written
as plain loops: ``all()`` over a generator costs a frame per call, and these run once for every
state found); the tests
compare both on every state of small explorations of every mode and variant (including the
states where a variant breaks its invariant), and the explorer re-checks a sample of the states
it visits with the model's own predicates (see :mod:`forkshare.model.compact_search`).
"""

from __future__ import annotations

from collections.abc import Callable

from forkshare.model.compact_rules import Rules
from forkshare.model.compact_state import (
    ABANDONED,
    ABORTED,
    ACCEPTED,
    C_ACCEPTS,
    C_BY_MASTER,
    C_FATE,
    C_LISTENER,
    C_OWNER,
    C_WAKEUPS,
    DEAD,
    DEFERRED,
    HELPER,
    L_BACKLOG,
    L_CLOSED_EARLY,
    L_LISTENING,
    L_PORT,
    L_QUEUE,
    L_REUSEPORT,
    L_SLOT,
    MASTER,
    NO_SHUTDOWN,
    P_ABANDONED,
    P_FDS,
    P_HOLDS_MUTEX,
    P_ORPHAN_ACCEPTS,
    P_PARENT,
    P_PHASE,
    P_ROLE,
    P_SHUTDOWN,
    P_SLOT,
    QUEUED,
    S_CONNECTIONS,
    S_LISTENERS,
    S_MUTEX,
    S_PROCESSES,
    S_USAGE,
    U_SHUTDOWNS,
    WORKER,
    Compact,
)

Check = Callable[[Rules, Compact], bool]


def type_ok(rules: Rules, state: Compact) -> bool:
    """Twin of :func:`~forkshare.model.invariants.type_ok`."""
    processes, listeners, connections = state[S_PROCESSES], state[S_LISTENERS], state[S_CONNECTIONS]
    count = len(listeners)
    queued: dict[int, int] = {}  # cid -> the sid whose queue holds it
    for sid, lst in enumerate(listeners):
        for cid in lst[L_QUEUE]:
            if cid in queued:
                return False
            queued[cid] = sid
    for r in processes:
        for sid in r[P_FDS]:
            if not 0 <= sid < count:
                return False
        if r[P_PHASE] == DEAD and (r[P_FDS] or r[P_HOLDS_MUTEX]):
            return False
    pids = len(processes)  # a canonical state's pids are 1..pids
    for cid, c in enumerate(connections):
        fate = c[C_FATE]
        if fate == QUEUED:
            if cid not in queued or cid not in listeners[c[C_LISTENER]][L_QUEUE]:
                return False
        elif cid in queued:
            return False
        elif fate == ACCEPTED:
            if not 0 < c[C_OWNER] <= pids:
                return False
        elif fate == DEFERRED and not (
            0 <= c[C_LISTENER] < count and listeners[c[C_LISTENER]][L_LISTENING]
        ):
            return False
    return True


def at_most_one_mutex_holder(rules: Rules, state: Compact) -> bool:
    """Twin of :func:`~forkshare.model.invariants.at_most_one_mutex_holder`."""
    believers = 0
    for pid, r in enumerate(state[S_PROCESSES], 1):
        if r[P_HOLDS_MUTEX]:
            believers += 1
            if believers > 1 or pid != state[S_MUTEX]:
                return False
    return True


def mutex_holder_is_alive(rules: Rules, state: Compact) -> bool:
    """Twin of :func:`~forkshare.model.invariants.mutex_holder_is_alive`."""
    mutex = state[S_MUTEX]
    return mutex == 0 or mutex <= len(state[S_PROCESSES])


def accepted_at_most_once(rules: Rules, state: Compact) -> bool:
    """Twin of :func:`~forkshare.model.invariants.accepted_at_most_once`."""
    return all(
        c[C_ACCEPTS] <= 1 and (c[C_FATE] != QUEUED or c[C_ACCEPTS] == 0)
        for c in state[S_CONNECTIONS]
    )


def queue_within_backlog(rules: Rules, state: Compact) -> bool:
    """Twin of :func:`~forkshare.model.invariants.queue_within_backlog`."""
    return all(len(lst[L_QUEUE]) <= lst[L_BACKLOG] + 1 for lst in state[S_LISTENERS])


def held_listener_is_listening(rules: Rules, state: Compact) -> bool:
    """Twin of :func:`~forkshare.model.invariants.held_listener_is_listening`."""
    listeners = state[S_LISTENERS]
    for r in state[S_PROCESSES]:
        for sid in r[P_FDS]:
            if not listeners[sid][L_LISTENING]:
                return False
    return True


def listening_listener_is_held(rules: Rules, state: Compact) -> bool:
    """Twin of :func:`~forkshare.model.invariants.listening_listener_is_held`."""
    held = {sid for r in state[S_PROCESSES] for sid in r[P_FDS]}
    for sid, lst in enumerate(state[S_LISTENERS]):
        if lst[L_LISTENING] and sid not in held:
            return False
    return True


def no_queued_connection_lost(rules: Rules, state: Compact) -> bool:
    """Twin of :func:`~forkshare.model.invariants.no_queued_connection_lost`."""
    return all(c[C_FATE] != ABORTED for c in state[S_CONNECTIONS])


def _service_running(state: Compact) -> bool:
    for r in state[S_PROCESSES]:
        if r[P_ROLE] == MASTER and r[P_PHASE] != DEAD and r[P_SHUTDOWN] == NO_SHUTDOWN:
            return True
    return False


def port_keeps_listening(rules: Rules, state: Compact) -> bool:
    """Twin of :func:`~forkshare.model.invariants.port_keeps_listening`."""
    for lst in state[S_LISTENERS]:
        if lst[L_LISTENING] and lst[L_PORT] == 0:
            return True
    return not _service_running(state)


def listeners_keep_identity(rules: Rules, state: Compact) -> bool:
    """Twin of :func:`~forkshare.model.invariants.listeners_keep_identity`."""
    return not any(lst[L_CLOSED_EARLY] for lst in state[S_LISTENERS])


def no_listener_after_shutdown(rules: Rules, state: Compact) -> bool:
    """Twin of :func:`~forkshare.model.invariants.no_listener_after_shutdown`."""
    if state[S_USAGE][U_SHUTDOWNS] == 0 or state[S_PROCESSES]:
        return True
    return not any(lst[L_LISTENING] for lst in state[S_LISTENERS])


def orphans_exit_with_master(rules: Rules, state: Compact) -> bool:
    """Twin of :func:`~forkshare.model.invariants.orphans_exit_with_master`."""
    for r in state[S_PROCESSES]:  # noqa: SIM110 - a loop, not all() over a generator: faster
        if r[P_ORPHAN_ACCEPTS]:
            return False
    return True


def requests_in_hand_are_answered(rules: Rules, state: Compact) -> bool:
    """Twin of :func:`~forkshare.model.invariants.requests_in_hand_are_answered`."""
    return all(c[C_FATE] != ABANDONED for c in state[S_CONNECTIONS])


def no_leaked_listener(rules: Rules, state: Compact) -> bool:
    """Twin of :func:`~forkshare.model.invariants.no_leaked_listener`."""
    for r in state[S_PROCESSES]:  # noqa: SIM110 - a loop, not any() over a generator: faster
        if r[P_ROLE] == HELPER and r[P_FDS]:
            return False
    return True


def master_never_accepts(rules: Rules, state: Compact) -> bool:
    """Twin of :func:`~forkshare.model.invariants.master_never_accepts`."""
    passfd = rules.mode_passfd
    return all(c[C_BY_MASTER] == passfd for c in state[S_CONNECTIONS] if c[C_ACCEPTS])


def reuseport_queue_has_consumer(rules: Rules, state: Compact) -> bool:
    """Twin of :func:`~forkshare.model.invariants.reuseport_queue_has_consumer`."""
    for sid, lst in enumerate(state[S_LISTENERS]):
        if lst[L_LISTENING] and lst[L_REUSEPORT] and not _has_consumer(state, lst[L_SLOT], sid):
            return not _service_running(state)
    return True


def _has_consumer(state: Compact, slot: int, sid: int) -> bool:
    processes = state[S_PROCESSES]
    for r in processes:
        if r[P_ROLE] == WORKER and r[P_PHASE] != DEAD and r[P_SLOT] == slot and sid in r[P_FDS]:
            return True
    return any(
        r[P_ROLE] == MASTER
        and r[P_PHASE] != DEAD
        and r[P_SHUTDOWN] == NO_SHUTDOWN
        and slot not in r[P_ABANDONED]
        for r in processes
    )


def single_pending_upgrade(rules: Rules, state: Compact) -> bool:
    """Twin of :func:`~forkshare.model.invariants.single_pending_upgrade`."""
    masters = []
    for pid, r in enumerate(state[S_PROCESSES], 1):
        if r[P_ROLE] != MASTER:
            break  # masters come first in a canonical state
        if r[P_PHASE] != DEAD:
            masters.append((pid, r))
    if len(masters) <= 1:
        return True
    if len(masters) > 2:
        return False
    (first, one), (second, other) = masters
    return bool(other[P_PARENT] == first or one[P_PARENT] == second)


def wakes_at_most_one(rules: Rules, state: Compact) -> bool:
    """Twin of :func:`~forkshare.model.invariants.wakes_at_most_one`."""
    return all(c[C_WAKEUPS] <= 1 for c in state[S_CONNECTIONS])


CHECKS: dict[str, Check] = {
    check.__name__: check
    for check in (
        type_ok,
        at_most_one_mutex_holder,
        mutex_holder_is_alive,
        accepted_at_most_once,
        queue_within_backlog,
        held_listener_is_listening,
        listening_listener_is_held,
        listeners_keep_identity,
        no_queued_connection_lost,
        port_keeps_listening,
        no_listener_after_shutdown,
        orphans_exit_with_master,
        requests_in_hand_are_answered,
        no_leaked_listener,
        master_never_accepts,
        reuseport_queue_has_consumer,
        single_pending_upgrade,
        wakes_at_most_one,
    )
}
"""The compact twin of each invariant, by the invariant's name."""

READS: dict[str, frozenset[int]] = {
    name: frozenset(parts)
    for name, parts in {
        "type_ok": (S_PROCESSES, S_LISTENERS, S_CONNECTIONS),
        "at_most_one_mutex_holder": (S_PROCESSES, S_MUTEX),
        "mutex_holder_is_alive": (S_PROCESSES, S_MUTEX),
        "accepted_at_most_once": (S_CONNECTIONS,),
        "queue_within_backlog": (S_LISTENERS,),
        "held_listener_is_listening": (S_PROCESSES, S_LISTENERS),
        "listening_listener_is_held": (S_PROCESSES, S_LISTENERS),
        "no_queued_connection_lost": (S_CONNECTIONS,),
        "port_keeps_listening": (S_PROCESSES, S_LISTENERS),
        "listeners_keep_identity": (S_LISTENERS,),
        "no_listener_after_shutdown": (S_PROCESSES, S_LISTENERS, S_USAGE),
        "orphans_exit_with_master": (S_PROCESSES,),
        "requests_in_hand_are_answered": (S_CONNECTIONS,),
        "no_leaked_listener": (S_PROCESSES,),
        "master_never_accepts": (S_CONNECTIONS,),
        "reuseport_queue_has_consumer": (S_PROCESSES, S_LISTENERS),
        "single_pending_upgrade": (S_PROCESSES,),
        "wakes_at_most_one": (S_CONNECTIONS,),
    }.items()
}
"""Which parts of the state each twin reads (a test derives them from the source and compares):
the explorer remembers the verdicts of the checks that read one part only, by that part's value."""
