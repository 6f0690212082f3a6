"""Symmetry reduction: states that differ only in the names (pids) of processes are one state.

Pids are arbitrary labels; two states that are the same up to renaming processes satisfy the same
invariants and have the same futures up to the same renaming. The explorer stores one canonical
representative per class: processes are renamed 1, 2, … in the order of a signature that does
not mention pids (masters first, then the others by role, their parent's new name, generation,
slot, …).
Processes with equal signatures are interchangeable, so the order among them does not matter.

What a client saw of a finished connection does not depend on which process served it, so the
owner of a connection that is no longer accepted is forgotten in the canonical form.
"""

from __future__ import annotations

from dataclasses import replace

from forkshare.model.state import Connection, Fate, Process, System

Renaming = dict[int, int]
"""Old pid → canonical pid."""


def canonical(state: System, fixed: frozenset[int] = frozenset()) -> tuple[System, Renaming]:
    """The canonical representative of ``state``'s class and the renaming that produces it.

    Processes whose pids are in ``fixed`` are not interchangeable with any other (they keep
    their order, first): two states are then one class only when they are equal up to renaming
    the *other* processes. The verifier fixes the processes a history has already named.
    """
    owned: dict[int, tuple[int, ...]] = {}
    for conn in state.connections:
        if conn.fate is Fate.ACCEPTED:
            owned[conn.owner] = (*owned.get(conn.owner, ()), conn.cid)
    renaming: Renaming = {}
    masters = sorted(
        (p for p in state.processes if p.is_master),
        key=lambda p: (_pinned(p, fixed), _master_key(p, owned)),
    )
    for proc in masters:
        renaming[proc.pid] = len(renaming) + 1
    workers = sorted(
        (p for p in state.processes if not p.is_master),
        key=lambda p: (_pinned(p, fixed), _worker_key(p, state, owned, renaming)),
    )
    for proc in workers:
        renaming[proc.pid] = len(renaming) + 1
    return _rename(state, renaming), renaming


def _pinned(proc: Process, fixed: frozenset[int]) -> tuple[int, int]:
    """Sorts fixed processes first, by pid; the others after, by their signature."""
    return (0, proc.pid) if proc.pid in fixed else (1, 0)


def _master_key(proc: Process, owned: dict[int, tuple[int, ...]]) -> tuple[object, ...]:
    return (
        proc.parent != 0,
        proc.generation,
        proc.phase,
        proc.shutdown,
        sorted(proc.fds),
        sorted(proc.abandoned),
        owned.get(proc.pid, ()),
    )


def _worker_key(
    proc: Process, state: System, owned: dict[int, tuple[int, ...]], renaming: Renaming
) -> tuple[object, ...]:
    return (
        proc.role,
        renaming.get(proc.parent, 0),
        proc.generation,
        proc.slot,
        proc.phase,
        proc.stopped,
        proc.quit_requested,
        proc.terminate_requested,
        proc.master_killed,
        proc.holds_mutex,
        state.mutex == proc.pid,
        proc.orphan_accepts,
        sorted(proc.fds),
        owned.get(proc.pid, ()),
    )


def _rename(state: System, renaming: Renaming) -> System:
    stale = len(renaming) + 1
    if _is_identity(state, renaming, stale):
        return state
    processes = tuple(
        sorted(
            (
                replace(p, pid=renaming[p.pid], parent=renaming.get(p.parent, 0))
                for p in state.processes
            ),
            key=lambda p: p.pid,
        )
    )
    connections = tuple(_rename_connection(c, renaming) for c in state.connections)
    mutex = 0 if state.mutex == 0 else renaming.get(state.mutex, stale)
    return replace(state, processes=processes, connections=connections, mutex=mutex)


def _rename_connection(conn: Connection, renaming: Renaming) -> Connection:
    owner = renaming.get(conn.owner, 0) if conn.fate is Fate.ACCEPTED else 0
    return conn if owner == conn.owner else replace(conn, owner=owner)


def _is_identity(state: System, renaming: Renaming, stale: int) -> bool:
    """True when renaming would change nothing (the common case, worth a fast path)."""
    if any(old != new for old, new in renaming.items()):
        return False
    if state.mutex not in (0, *renaming) and state.mutex != stale:
        return False
    if any(p.parent not in renaming and p.parent != 0 for p in state.processes):
        return False
    return all(
        c.owner == 0 or (c.fate is Fate.ACCEPTED and c.owner in renaming) for c in state.connections
    )
