"""The kernel facts of :mod:`forkshare.model.kernel` (K1–K20), on a mutable draft of a compact state.

An action that changes several things at once (a process exits: its descriptors close, a socket
may close with its last one and reset its queue, its children are reparented, init may reap it)
is written here once, as methods of :class:`Draft`, each the twin of the kernel function of the
same name. A draft is built from a canonical compact state, changed in place, and frozen into
the canonical form of the successor. Every method keeps the derived fields of the process records
(the lock word and the owned cids, :mod:`forkshare.model.compact_state`) up to date.
"""

from __future__ import annotations

from forkshare.model.compact_state import (
    ABORTED,
    ACCEPTED,
    C_FATE,
    C_HELD_BACK,
    C_LISTENER,
    C_OWNER,
    DEAD,
    DEFERRED,
    DISCARDED,
    L_BACKLOG,
    L_BY_MASTER,
    L_LISTENING,
    L_PORT,
    L_QUEUE,
    L_REUSEPORT,
    MASTER,
    NO_SHUTDOWN,
    P_FDS,
    P_HOLDS_MUTEX,
    P_MUTEX_WORD,
    P_OWNED,
    P_PARENT,
    P_PHASE,
    P_ROLE,
    P_SHUTDOWN,
    P_STOPPED,
    QUEUED,
    RESET,
    RUNNING,
    Compact,
    Record,
)
from forkshare.model.compact_symmetry import canonical_form


def with_field(record: Record, index: int, value: object) -> Record:
    """``record`` with field ``index`` set to ``value``."""
    return (*record[:index], value, *record[index + 1 :])


def with_fields(record: Record, changes: dict[int, object]) -> Record:
    """``record`` with each field ``index`` of ``changes`` set to its value."""
    fields = list(record)
    for index, value in changes.items():
        fields[index] = value
    return tuple(fields)


def new_process(role: int, parent: int, generation: int, slot: int, fds: tuple[int, ...]) -> Record:
    """A running process record with every flag at its default (``Process``'s defaults)."""
    return (
        role,
        parent,
        generation,
        slot,
        RUNNING,
        False,
        False,
        False,
        False,
        False,
        False,
        0,
        fds,
        (),
        NO_SHUTDOWN,
        (),
    )


def new_listener(port: int, reuseport: bool, slot: int, by_master: bool, backlog: int) -> Record:
    """A listening socket record with an empty queue (``Listener``'s defaults)."""
    return (port, reuseport, slot, by_master, backlog, (), True, False, True)


def new_connection(fate: int, listener: int, held_back: bool = False) -> Record:
    """A connection record as it arrives (``Connection``'s defaults)."""
    return (fate, listener, 0, 0, False, False, 0, held_back)


class Draft:
    """A compact state being changed: processes by pid, listeners, connections, lock word, usage."""

    __slots__ = ("connections", "listeners", "mutex", "processes", "usage")

    def __init__(self, state: Compact) -> None:
        self.processes: dict[int, Record] = dict(enumerate(state[0], 1))
        self.listeners: list[Record] = list(state[1])
        self.connections: list[Record] = list(state[2])
        self.mutex: int = state[3]
        self.usage: list[int] = list(state[4])

    def freeze(self) -> Compact:
        """The canonical form of the draft (processes stay in pid order: new pids are the largest)."""
        return canonical_form(
            tuple(self.processes),
            tuple(self.processes.values()),
            tuple(self.listeners),
            tuple(self.connections),
            self.mutex,
            tuple(self.usage),
        )

    # -- processes -------------------------------------------------------------------------

    def next_pid(self) -> int:
        """Twin of ``System.next_pid``: above every pid in use, and above the lock word."""
        return 1 + max(self.mutex, max(self.processes, default=0))

    def set(self, pid: int, index: int, value: object) -> None:
        """Set one field of process ``pid``."""
        self.processes[pid] = with_field(self.processes[pid], index, value)

    def add_process(self, pid: int, record: Record) -> None:
        """Twin of ``put_process`` for a new pid (the largest, so pid order is kept)."""
        self.processes[pid] = record

    def set_mutex(self, word: int) -> None:
        """Write the lock word, keeping every record's ``P_MUTEX_WORD`` true to it."""
        old = self.mutex
        if old in self.processes:
            self.set(old, P_MUTEX_WORD, False)
        self.mutex = word
        if word in self.processes:
            self.set(word, P_MUTEX_WORD, True)

    def remove_process(self, pid: int) -> None:
        """Twin of ``remove_process``: the process leaves the table (it was reaped)."""
        del self.processes[pid]

    def reaped_by_init(self, pid: int) -> None:
        """Twin of ``reaped_by_init``: removed, and the lock word it names is released."""
        self.remove_process(pid)
        if self.mutex == pid:
            self.mutex = 0

    def fork(
        self, parent: int, role: int, generation: int, slot: int, keep: tuple[int, ...] | None
    ) -> int:
        """Twin of ``fork``: process ``parent`` forks; returns the child's pid."""
        fds = self.processes[parent][P_FDS]
        if keep is not None:
            fds = tuple(sid for sid in fds if sid in keep)
        pid = self.next_pid()
        self.add_process(pid, new_process(role, parent, generation, slot, fds))
        return pid

    # -- connections -----------------------------------------------------------------------

    def end_connection(self, cid: int, fate: int) -> None:
        """Connection ``cid`` leaves the accepted state (or any other) for ``fate``; its owner's
        record forgets it and its owner is forgotten (as the canonical form does)."""
        conn = self.connections[cid]
        if conn[C_FATE] == ACCEPTED:
            owner = self.processes[conn[C_OWNER]]
            self.processes[conn[C_OWNER]] = with_field(
                owner, P_OWNED, tuple(c for c in owner[P_OWNED] if c != cid)
            )
        self.connections[cid] = (fate, conn[C_LISTENER], 0, *conn[C_OWNER + 1 :])

    def owned(self, pid: int) -> tuple[int, ...]:
        """Cids of the accepted connections ``pid`` owns (twin of ``System.owned``)."""
        return tuple(self.processes[pid][P_OWNED])

    def children(self, pid: int) -> list[tuple[int, Record]]:
        """Pids and records of the processes whose parent is ``pid`` (twin of
        ``System.children``)."""
        return [(child, r) for child, r in self.processes.items() if r[P_PARENT] == pid]

    # -- listening sockets -----------------------------------------------------------------

    def open_listener(
        self, owner: int, port: int, *, reuseport: bool, slot: int, by_master: bool, backlog: int
    ) -> None:
        """Twin of ``open_listener``: a new socket, held by ``owner``."""
        sid = len(self.listeners)
        self.listeners.append(new_listener(port, reuseport, slot, by_master, backlog))
        record = self.processes[owner]
        self.set(owner, P_FDS, tuple(sorted((*record[P_FDS], sid))))

    def bind_conflicts(self, port: int, reuseport: bool) -> bool:
        """Twin of ``bind_conflicts`` (K7, K15)."""
        return any(
            lst[L_LISTENING] and lst[L_PORT] == port and not (reuseport and lst[L_REUSEPORT])
            for lst in self.listeners
        )

    def serves_running_service(self, record: Record) -> bool:
        """Twin of ``serves_running_service``."""
        master = record if record[P_ROLE] == MASTER else self.processes.get(record[P_PARENT])
        return (
            master is not None
            and master[P_ROLE] == MASTER
            and master[P_PHASE] != DEAD
            and master[P_SHUTDOWN] == NO_SHUTDOWN
        )

    def close_listener(self, sid: int, closer: Record) -> None:
        """Twin of ``close_listener``: the socket stops listening and its queue is reset (K8)."""
        listener = self.listeners[sid]
        running = self.serves_running_service(closer)
        fate = ABORTED if running else DISCARDED
        for cid in listener[L_QUEUE]:
            self.end_connection(cid, fate)
        for cid, conn in enumerate(self.connections):
            if conn[C_FATE] == DEFERRED and conn[C_LISTENER] == sid:
                self.end_connection(cid, fate)
        self.listeners[sid] = (
            *listener[:L_QUEUE],
            (),
            False,
            bool(listener[L_BY_MASTER] and running),
            *listener[L_LISTENING + 2 :],
        )

    def close_descriptor(self, pid: int, sid: int) -> None:
        """Twin of ``close_descriptor``: the socket closes with its last descriptor."""
        record = self.processes[pid]
        self.set(pid, P_FDS, tuple(s for s in record[P_FDS] if s != sid))
        if not any(sid in r[P_FDS] for r in self.processes.values()):
            self.close_listener(sid, record)

    def close_all_descriptors(self, pid: int) -> None:
        """Twin of ``close_all_descriptors``."""
        for sid in self.processes[pid][P_FDS]:
            self.close_descriptor(pid, sid)

    def has_room(self, sid: int) -> bool:
        """Twin of ``has_room`` (K13)."""
        listener = self.listeners[sid]
        return bool(len(listener[L_QUEUE]) <= listener[L_BACKLOG])

    def enqueue(self, cid: int) -> None:
        """Twin of ``enqueue``: the connection joins the tail of its listener's queue."""
        conn = self.connections[cid]
        sid = conn[C_LISTENER]
        listener = self.listeners[sid]
        self.listeners[sid] = with_field(listener, L_QUEUE, (*listener[L_QUEUE], cid))
        self.connections[cid] = with_fields(conn, {C_FATE: QUEUED, C_HELD_BACK: False})

    # -- exit ------------------------------------------------------------------------------

    def exit_process(self, pid: int, in_flight: int = RESET) -> None:
        """Twin of ``exit_process``: descriptors close, connections in flight end, children go to
        init, and init reaps the process at once when its parent is gone."""
        record = self.processes[pid]
        self.processes[pid] = with_fields(
            record, {P_PHASE: DEAD, P_HOLDS_MUTEX: False, P_STOPPED: False}
        )
        self.close_all_descriptors(pid)
        for cid in self.owned(pid):
            self.end_connection(cid, in_flight)
        for child, r in self.children(pid):
            if r[P_PHASE] != DEAD:
                self.set(child, P_PARENT, 0)
            else:
                self.reaped_by_init(child)
        if record[P_PARENT] not in self.processes:
            self.reaped_by_init(pid)
