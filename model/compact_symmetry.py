"""Symmetry reduction on compact states: the same canonical representative as
:func:`forkshare.model.symmetry.canonical`, computed on tuples.

``decode(canonical_of(s))`` equals ``canonical(s)[0]`` for every ``System`` ``s``
(``tests/model/test_compact.py`` checks it on every state of small explorations), so the fast
explorer finds the same states, in the same number, as the model's own reduction.

Processes are renamed 1, 2, … masters first (ordered by the master key), then the others,
ordered by their records, which are laid out as the non-master key (see
:mod:`forkshare.model.compact_state`); Python's sort is stable and the records come in pid
order, so ties fall as in the model. Parents, owners of accepted connections and the lock word
follow the renaming; the owner of a connection no longer accepted is forgotten; a lock word that
names no process becomes ``n + 1``.

The common case — at most one master, already pid 1, every parent 0 or that master — needs no
rewriting of parents: the records are only reordered. Everything else goes the model's way.

Most actions change one process record, add one or remove one. For those, :func:`replaced`,
:func:`inserted` and :func:`removed` give the canonical successor of a canonical state without
sorting: the other records are still in order, so the changed one is moved (or put, or taken
out) by bisection and only the pids between its old and new place shift by one. They apply when
the record is not a master's and every parent is a master (as in every state the model reaches:
only masters fork); otherwise they hand over to :func:`canonical_form`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from forkshare.model.compact_state import (
    ACCEPTED,
    C_FATE,
    C_OWNER,
    MASTER,
    P_ABANDONED,
    P_FDS,
    P_GENERATION,
    P_OWNED,
    P_PARENT,
    P_PHASE,
    P_ROLE,
    P_SHUTDOWN,
    Compact,
    Record,
    encode,
)
from forkshare.model.state import System

IDENTITY = [tuple(range(1, n + 1)) for n in range(64)]
"""``IDENTITY[n]`` is the pids of a canonical state with ``n`` processes."""
_UNMOVED = [list(range(n)) for n in range(64)]
"""``_UNMOVED[n]`` is the sort order of ``n`` records already in order."""


def canonical_of(state: System) -> Compact:
    """The canonical compact form of any ``System``."""
    return canonical_form(*encode(state))


def canonical_form(
    pids: tuple[int, ...],
    processes: tuple[Record, ...],
    listeners: tuple[Record, ...],
    connections: tuple[Record, ...],
    mutex: int,
    usage: tuple[int, ...],
) -> Compact:
    """The canonical compact state of a state given by its parts (``pids[k]`` is the pid of
    ``processes[k]``, in increasing order; derived fields up to date)."""
    count = len(processes)
    if count >= len(IDENTITY):
        return _general(pids, processes, listeners, connections, mutex, usage)
    order = sorted(range(count), key=processes.__getitem__)  # masters (code 0) come first
    if count > 1 and processes[order[1]][P_ROLE] == MASTER:
        return _general(pids, processes, listeners, connections, mutex, usage)
    master = pids[order[0]] if count and processes[order[0]][P_ROLE] == MASTER else 0
    if master > 1:
        return _general(pids, processes, listeners, connections, mutex, usage)
    for r in processes:
        parent = r[P_PARENT]
        if parent and parent != master:
            return _general(pids, processes, listeners, connections, mutex, usage)
    unmoved = pids == IDENTITY[count] and order == _UNMOVED[count]
    if unmoved and (not mutex or mutex <= count + 1) and _owners_are_kept(connections, count):
        return (processes, listeners, connections, mutex, usage)
    renaming = {pids[index]: new for new, index in enumerate(order, 1)}
    return (
        tuple([processes[index] for index in order]),
        listeners,
        _renamed_connections(connections, renaming),
        0 if mutex == 0 else renaming.get(mutex, count + 1),
        usage,
    )


def _owners_are_kept(connections: tuple[Record, ...], count: int) -> bool:
    """True when no owner needs rewriting under the identity renaming of pids 1..count."""
    for c in connections:
        owner = c[C_OWNER]
        if owner and (c[C_FATE] != ACCEPTED or owner > count):
            return False
    return True


def _renamed_connections(
    connections: tuple[Record, ...], renaming: dict[int, int]
) -> tuple[Record, ...]:
    renamed = []
    for c in connections:
        owner = renaming.get(c[C_OWNER], 0) if c[C_FATE] == ACCEPTED else 0
        renamed.append(c if owner == c[C_OWNER] else (*c[:C_OWNER], owner, *c[C_OWNER + 1 :]))
    return tuple(renamed)


def _master_key(r: Record) -> tuple[object, ...]:
    return (
        r[P_PARENT] != 0,
        r[P_GENERATION],
        r[P_PHASE],
        r[P_SHUTDOWN],
        r[P_FDS],
        r[P_ABANDONED],
        r[P_OWNED],
    )


def _general(
    pids: tuple[int, ...],
    processes: tuple[Record, ...],
    listeners: tuple[Record, ...],
    connections: tuple[Record, ...],
    mutex: int,
    usage: tuple[int, ...],
) -> Compact:
    """The model's algorithm step by step: masters by the master key, then the others by their
    records with parents renamed as far as the masters go."""
    masters = [k for k, r in enumerate(processes) if r[P_ROLE] == MASTER]
    masters.sort(key=lambda k: _master_key(processes[k]))
    renaming = {pids[k]: new for new, k in enumerate(masters, 1)}
    others = [k for k, r in enumerate(processes) if r[P_ROLE] != MASTER]
    others.sort(key=lambda k: _with_parent(processes[k], renaming.get(processes[k][P_PARENT], 0)))
    for new, k in enumerate(others, len(masters) + 1):
        renaming[pids[k]] = new
    renamed = tuple(
        _with_parent(processes[k], renaming.get(processes[k][P_PARENT], 0))
        for k in (*masters, *others)
    )
    return (
        renamed,
        listeners,
        _renamed_connections(connections, renaming),
        0 if mutex == 0 else renaming.get(mutex, len(processes) + 1),
        usage,
    )


def _with_parent(r: Record, parent: int) -> Record:
    return r if r[P_PARENT] == parent else (*r[:P_PARENT], parent, *r[P_PARENT + 1 :])


def _masters(processes: tuple[Record, ...]) -> int:
    """How many masters lead a canonical process tuple."""
    count = 0
    for r in processes:
        if r[P_ROLE] != MASTER:
            break
        count += 1
    return count


def _parents_are_masters(processes: tuple[Record, ...], masters: int) -> bool:
    return all(r[P_PARENT] <= masters for r in processes)


def _shifted(
    connections: tuple[Record, ...], mutex: int, rename: dict[int, int]
) -> tuple[tuple[Record, ...], int]:
    """Owners and the lock word under a partial renaming (pids not in it keep their name)."""
    if any(c[C_OWNER] in rename for c in connections):
        connections = tuple(
            [
                (*c[:C_OWNER], rename[c[C_OWNER]], *c[C_OWNER + 1 :]) if c[C_OWNER] in rename else c
                for c in connections
            ]
        )
    return connections, rename.get(mutex, mutex)


def replaced(
    processes: tuple[Record, ...],
    index: int,
    record: Record,
    listeners: tuple[Record, ...],
    connections: tuple[Record, ...],
    mutex: int,
    usage: tuple[int, ...],
) -> Compact:
    """The canonical state in which the record at ``index`` of the canonical ``processes`` is
    replaced by ``record`` (same role and parent), with the other parts given (their pids named
    as in ``processes``)."""
    count = len(processes)
    if record[P_ROLE] == MASTER:
        changed = (*processes[:index], record, *processes[index + 1 :])
        if index == 0 and (count == 1 or processes[1][P_ROLE] != MASTER):
            return (changed, listeners, connections, mutex, usage)
        return canonical_form(IDENTITY[count], changed, listeners, connections, mutex, usage)
    if index and processes[index - 1][P_ROLE] != MASTER and record < processes[index - 1]:
        new = bisect_right(processes, record, 0, index)
        ordered = (*processes[:new], record, *processes[new:index], *processes[index + 1 :])
        rename = {pid: pid + 1 for pid in range(new + 1, index + 1)}
    elif index + 1 < count and processes[index + 1] < record:
        new = bisect_left(processes, record, index + 1, count) - 1
        ordered = (
            *processes[:index],
            *processes[index + 1 : new + 1],
            record,
            *processes[new + 1 :],
        )
        rename = {pid: pid - 1 for pid in range(index + 2, new + 2)}
    else:
        changed = (*processes[:index], record, *processes[index + 1 :])
        return (changed, listeners, connections, mutex, usage)
    if not _parents_are_masters(processes, _masters(processes)):
        changed = (*processes[:index], record, *processes[index + 1 :])
        return canonical_form(IDENTITY[count], changed, listeners, connections, mutex, usage)
    rename[index + 1] = new + 1
    connections, mutex = _shifted(connections, mutex, rename)
    return (ordered, listeners, connections, mutex, usage)


def inserted(
    processes: tuple[Record, ...],
    record: Record,
    listeners: tuple[Record, ...],
    connections: tuple[Record, ...],
    mutex: int,
    usage: tuple[int, ...],
) -> Compact:
    """The canonical state in which a new non-master process ``record`` (with the next pid, the
    largest) joins the canonical ``processes``."""
    count = len(processes)
    if record[P_ROLE] == MASTER or not _parents_are_masters(processes, _masters(processes)):
        pid = 1 + max(mutex, count)
        return canonical_form(
            (*IDENTITY[count], pid), (*processes, record), listeners, connections, mutex, usage
        )
    new = bisect_right(processes, record)
    ordered = (*processes[:new], record, *processes[new:])
    if new == count and mutex <= count:
        return (ordered, listeners, connections, mutex, usage)
    rename = {pid: pid + 1 for pid in range(new + 1, count + 2)}  # count + 1: a stale lock word
    connections, mutex = _shifted(connections, mutex, rename)
    return (ordered, listeners, connections, mutex, usage)


def removed(
    processes: tuple[Record, ...],
    index: int,
    listeners: tuple[Record, ...],
    connections: tuple[Record, ...],
    mutex: int,
    usage: tuple[int, ...],
) -> Compact:
    """The canonical state in which the non-master process at ``index`` of the canonical
    ``processes`` (one that owns no connection) leaves the table."""
    count = len(processes)
    if not _parents_are_masters(processes, _masters(processes)) or index < _masters(processes):
        return canonical_form(
            (*IDENTITY[count][:index], *IDENTITY[count][index + 1 :]),
            (*processes[:index], *processes[index + 1 :]),
            listeners,
            connections,
            mutex,
            usage,
        )
    remaining = (*processes[:index], *processes[index + 1 :])
    rename = {pid: pid - 1 for pid in range(index + 2, count + 2)}  # count + 1: a stale lock word
    rename[index + 1] = count  # the lock word naming the gone process becomes stale
    connections, mutex = _shifted(connections, mutex, rename)
    return (remaining, listeners, connections, mutex, usage)
