"""The explorer's compact form of a :class:`~forkshare.model.state.System`: plain tuples of ints.

The model's public face is frozen dataclasses (:mod:`forkshare.model.state`); building one with
``dataclasses.replace`` costs microseconds, and the explorer builds millions. This module is the
exact, two-way translation between a ``System`` and the tuples the fast explorer works on
(:mod:`forkshare.model.compact_actions`); nothing else of the model sees the tuples.

A compact state is ``(processes, listeners, connections, mutex, usage)``:

* ``processes``: one record per process (fields ``P_*`` below); the pid of a process is its
  index plus one, so a compact state always names its processes 1, 2, …;
* ``listeners``: one record per listening socket, the sid is the index (fields ``L_*``);
* ``connections``: one record per connection, the cid is the index (fields ``C_*``);
* ``mutex``: the lock word, a pid or 0;
* ``usage``: the budget counters, in :class:`~forkshare.model.state.Usage` field order.

The explorer only stores canonical states (:mod:`forkshare.model.compact_symmetry`), whose pids
are 1, 2, … by construction; :func:`decode` gives the ``System`` one stands for, and
:func:`canonical_of` the canonical compact form of any ``System``:
``decode(canonical_of(s)) == canonical(s)[0]`` and ``canonical_of(decode(c)) == c``.

Codes of enums are ranked like their string values (a ``StrEnum`` compares as its string), so
that comparing codes orders records as the model's symmetry keys order the enums. The one
exception is ``MASTER``, coded 0 so that masters sort before every other process as the
canonical order wants; the model never compares a master's role with another role. Sets of sids
or slots become sorted tuples, which compare like the sorted lists the symmetry keys use.
Booleans stay ``bool``.

Discussion:
    *A process record is laid out as its own symmetry key.* The fields come in the order of
    :func:`forkshare.model.symmetry._worker_key`, so sorting the records of the non-master
    processes (stably, from pid order) sorts them exactly like the model's stable sort by that
    key. Two fields of that key are not process fields but facts about the whole state: whether
    the lock word names the process (``P_MUTEX_WORD``) and the cids of the connections it has
    accepted (``P_OWNED``). They are stored in the record, derived, and kept up to date by every
    compact action; :func:`canonical_of` computes them and :func:`decode` drops them.

    *No pid in the record.* Renaming processes then reorders records without rebuilding them;
    only parents, owners and the lock word, which hold pids, are rewritten.

    *Plain tuples rather than interned ids or ``bytes``.* Interning each record to an int would
    make hashing a state cheaper, but every new record would then pay a dictionary lookup, and
    reading a field would take two indexings.
"""

from __future__ import annotations

from typing import Any, Final

from forkshare.model.state import (
    Connection,
    Fate,
    Listener,
    Phase,
    Process,
    Role,
    Shutdown,
    System,
    Usage,
)

Record = tuple[Any, ...]
"""One process, listener or connection record (the fields are ints, bools and int tuples)."""
Compact = tuple[tuple[Record, ...], tuple[Record, ...], tuple[Record, ...], int, tuple[int, ...]]
"""A whole compact state: ``(processes, listeners, connections, mutex, usage)``."""
Parts = tuple[
    tuple[int, ...],
    tuple[Record, ...],
    tuple[Record, ...],
    tuple[Record, ...],
    int,
    tuple[int, ...],
]
"""A state before renaming: ``(pids, processes, listeners, connections, mutex, usage)``, the
processes in increasing pid order, ``pids[k]`` the pid of ``processes[k]``."""

S_PROCESSES: Final = 0
S_LISTENERS: Final = 1
S_CONNECTIONS: Final = 2
S_MUTEX: Final = 3
S_USAGE: Final = 4


def _ranked(enum: type[Role] | type[Phase] | type[Shutdown] | type[Fate]) -> tuple[Any, ...]:
    """The members in the order of their string values: the code of a member is its index."""
    return tuple(sorted(enum, key=str))


ROLES: Final = (Role.MASTER, *(role for role in _ranked(Role) if role is not Role.MASTER))
PHASES: Final = _ranked(Phase)
SHUTDOWNS: Final = _ranked(Shutdown)
FATES: Final = _ranked(Fate)

HELPER: Final = ROLES.index(Role.HELPER)
MASTER: Final = ROLES.index(Role.MASTER)
WORKER: Final = ROLES.index(Role.WORKER)
DEAD: Final = PHASES.index(Phase.DEAD)
EXITING: Final = PHASES.index(Phase.EXITING)
RUNNING: Final = PHASES.index(Phase.RUNNING)
NO_SHUTDOWN: Final = SHUTDOWNS.index(Shutdown.NONE)
GRACEFUL: Final = SHUTDOWNS.index(Shutdown.GRACEFUL)
FAST: Final = SHUTDOWNS.index(Shutdown.FAST)
DEFERRED: Final = FATES.index(Fate.DEFERRED)
QUEUED: Final = FATES.index(Fate.QUEUED)
ACCEPTED: Final = FATES.index(Fate.ACCEPTED)
SERVED: Final = FATES.index(Fate.SERVED)
CLOSED: Final = FATES.index(Fate.CLOSED)
RESET: Final = FATES.index(Fate.RESET)
ABANDONED: Final = FATES.index(Fate.ABANDONED)
ABORTED: Final = FATES.index(Fate.ABORTED)
DISCARDED: Final = FATES.index(Fate.DISCARDED)
REFUSED: Final = FATES.index(Fate.REFUSED)
DROPPED: Final = FATES.index(Fate.DROPPED)

# Process record: the non-master symmetry key, then the master-only fields (the pid is the index
# plus one).
(
    P_ROLE,
    P_PARENT,
    P_GENERATION,
    P_SLOT,
    P_PHASE,
    P_STOPPED,
    P_QUIT,
    P_TERMINATE,
    P_MASTER_KILLED,
    P_HOLDS_MUTEX,
    P_MUTEX_WORD,
    P_ORPHAN_ACCEPTS,
    P_FDS,
    P_OWNED,
    P_SHUTDOWN,
    P_ABANDONED,
) = range(16)

# Listener record (the sid is its index).
(
    L_PORT,
    L_REUSEPORT,
    L_SLOT,
    L_BY_MASTER,
    L_BACKLOG,
    L_QUEUE,
    L_LISTENING,
    L_CLOSED_EARLY,
    L_REUSEADDR,
) = range(9)

# Connection record (the cid is its index).
C_FATE, C_LISTENER, C_OWNER, C_ACCEPTS, C_BY_MASTER, C_REQUESTED, C_WAKEUPS, C_HELD_BACK = range(8)

# Usage counters, in Usage's field order.
(
    U_STARTS,
    U_FAILED_STARTS,
    U_KILLS,
    U_MASTER_KILLS,
    U_STOPS,
    U_RELOADS,
    U_UPGRADES,
    U_SHUTDOWNS,
    U_HELPERS,
) = range(9)

PROCESS_FIELDS: Final = (
    "role",
    "parent",
    "generation",
    "slot",
    "phase",
    "stopped",
    "quit_requested",
    "terminate_requested",
    "master_killed",
    "holds_mutex",
    "orphan_accepts",
    "fds",
    "pid",
    "shutdown",
    "abandoned",
)
"""The :class:`Process` fields a record holds (a test checks that none is missing)."""
LISTENER_FIELDS: Final = (
    "sid",
    "port",
    "reuseport",
    "slot",
    "by_master",
    "backlog",
    "queue",
    "listening",
    "closed_early",
    "reuseaddr",
)
CONNECTION_FIELDS: Final = (
    "cid",
    "fate",
    "listener",
    "owner",
    "accepts",
    "by_master",
    "requested",
    "wakeups",
    "held_back",
)
USAGE_FIELDS: Final = (
    "starts",
    "failed_starts",
    "kills",
    "master_kills",
    "stops",
    "reloads",
    "upgrades",
    "shutdowns",
    "helpers",
)
SYSTEM_FIELDS: Final = ("processes", "listeners", "connections", "mutex", "usage")


def encode(state: System) -> Parts:
    """``state`` taken apart into compact records, with its pids beside the process records (any
    state, canonical or not: :func:`~forkshare.model.compact_symmetry.canonical_of` makes the
    compact state of it)."""
    owned: dict[int, tuple[int, ...]] = {}
    for conn in state.connections:
        if conn.fate is Fate.ACCEPTED:
            owned[conn.owner] = (*owned.get(conn.owner, ()), conn.cid)
    processes = tuple(
        (
            ROLES.index(p.role),
            p.parent,
            p.generation,
            p.slot,
            PHASES.index(p.phase),
            p.stopped,
            p.quit_requested,
            p.terminate_requested,
            p.master_killed,
            p.holds_mutex,
            state.mutex == p.pid,
            p.orphan_accepts,
            tuple(sorted(p.fds)),
            owned.get(p.pid, ()),
            SHUTDOWNS.index(p.shutdown),
            tuple(sorted(p.abandoned)),
        )
        for p in state.processes
    )
    listeners = tuple(
        (
            lst.port,
            lst.reuseport,
            lst.slot,
            lst.by_master,
            lst.backlog,
            lst.queue,
            lst.listening,
            lst.closed_early,
            lst.reuseaddr,
        )
        for lst in state.listeners
    )
    connections = tuple(
        (
            FATES.index(c.fate),
            c.listener,
            c.owner,
            c.accepts,
            c.by_master,
            c.requested,
            c.wakeups,
            c.held_back,
        )
        for c in state.connections
    )
    usage = tuple(getattr(state.usage, name) for name in USAGE_FIELDS)
    pids = tuple(p.pid for p in state.processes)
    return (pids, processes, listeners, connections, state.mutex, usage)


def decode(compact: Compact) -> System:
    """The ``System`` a compact state stands for (process ``k`` has pid ``k + 1``)."""
    processes, listeners, connections, mutex, usage = compact
    return System(
        processes=tuple(
            Process(
                pid=pid,
                role=ROLES[r[P_ROLE]],
                parent=r[P_PARENT],
                generation=r[P_GENERATION],
                slot=r[P_SLOT],
                phase=PHASES[r[P_PHASE]],
                stopped=r[P_STOPPED],
                fds=frozenset(r[P_FDS]),
                holds_mutex=r[P_HOLDS_MUTEX],
                quit_requested=r[P_QUIT],
                terminate_requested=r[P_TERMINATE],
                orphan_accepts=r[P_ORPHAN_ACCEPTS],
                master_killed=r[P_MASTER_KILLED],
                shutdown=SHUTDOWNS[r[P_SHUTDOWN]],
                abandoned=frozenset(r[P_ABANDONED]),
            )
            for pid, r in enumerate(processes, 1)
        ),
        listeners=tuple(
            Listener(
                sid=sid,
                port=r[L_PORT],
                reuseport=r[L_REUSEPORT],
                slot=r[L_SLOT],
                by_master=r[L_BY_MASTER],
                backlog=r[L_BACKLOG],
                queue=r[L_QUEUE],
                listening=r[L_LISTENING],
                closed_early=r[L_CLOSED_EARLY],
                reuseaddr=r[L_REUSEADDR],
            )
            for sid, r in enumerate(listeners)
        ),
        connections=tuple(
            Connection(
                cid=cid,
                fate=FATES[r[C_FATE]],
                listener=r[C_LISTENER],
                owner=r[C_OWNER],
                accepts=r[C_ACCEPTS],
                by_master=r[C_BY_MASTER],
                requested=r[C_REQUESTED],
                wakeups=r[C_WAKEUPS],
                held_back=r[C_HELD_BACK],
            )
            for cid, r in enumerate(connections)
        ),
        mutex=mutex,
        usage=Usage(**dict(zip(USAGE_FIELDS, usage, strict=True))),
    )
