"""Linux semantics the actions are built from, as pure functions on :class:`System` (K1–K20).

Each function is one kernel fact: fork copies the descriptor table (K1); a socket lives while any
descriptor refers to it, and closing the last one resets the connections still queued on it, and
those its TCP_DEFER_ACCEPT holds back (K1, K8, K19); exit closes every descriptor and resets the
connections in flight; bind fails with EADDRINUSE against a listening socket unless both sides
set SO_REUSEPORT (K7, K15); a SYN that finds the accept queue holding backlog+1 connections is
dropped (K13, K14); a connection to a TCP_DEFER_ACCEPT listener waits outside the queue (K19).
"""

from __future__ import annotations

from dataclasses import replace

from forkshare.model.state import (
    Connection,
    Fate,
    Listener,
    Phase,
    Process,
    Role,
    Shutdown,
    System,
)


def put_process(state: System, proc: Process) -> System:
    """``state`` with ``proc`` added, or replacing the process with the same pid."""
    others = tuple(p for p in state.processes if p.pid != proc.pid)
    return replace(state, processes=tuple(sorted((*others, proc), key=lambda p: p.pid)))


def remove_process(state: System, pid: int) -> System:
    """``state`` without process ``pid`` (it was reaped)."""
    return replace(state, processes=tuple(p for p in state.processes if p.pid != pid))


def put_listener(state: System, listener: Listener) -> System:
    """``state`` with ``listener`` replacing the socket with the same sid."""
    listeners = list(state.listeners)
    listeners[listener.sid] = listener
    return replace(state, listeners=tuple(listeners))


def put_connection(state: System, conn: Connection) -> System:
    """``state`` with ``conn`` replacing the connection with the same cid (or appended)."""
    conns = list(state.connections)
    if conn.cid == len(conns):
        conns.append(conn)
    else:
        conns[conn.cid] = conn
    return replace(state, connections=tuple(conns))


def fork(
    state: System,
    parent: Process,
    role: Role,
    generation: int,
    slot: int,
    keep: frozenset[int] | None = None,
) -> System:
    """``parent`` forks a child that holds the same listening sockets (K1); returns the new state.

    The child gets :attr:`System.next_pid`. Descriptors are copied, so every socket's reference
    count grows by one; the mutex belief is not inherited (the child has not acquired it).
    ``keep``, when given, is the subset the child keeps: it closes the others right after fork
    (those sockets stay open, the parent still holds them).
    """
    child = Process(
        pid=state.next_pid,
        role=role,
        parent=parent.pid,
        generation=generation,
        slot=slot,
        fds=parent.fds if keep is None else parent.fds & keep,
    )
    return put_process(state, child)


def serves_running_service(state: System, proc: Process) -> bool:
    """True when ``proc`` belongs to a server meant to keep running: it is (or its parent is) a
    live master that was not told to shut down. An orphan belongs to no running server."""
    master = proc if proc.is_master else state.process(proc.parent)
    return (
        master is not None
        and master.is_master
        and master.is_alive
        and master.shutdown is Shutdown.NONE
    )


def close_listener(state: System, sid: int, closer: Process) -> System:
    """``closer`` closed the last descriptor of socket ``sid``: it stops listening and its queue
    is reset (K8).

    The loss is the closer's server's: a queued connection is *aborted* when that server was
    meant to keep running (a worker's death, a reload: the invariants forbid it) and
    *discarded* when it was shutting down or already gone (its master died).
    """
    listener = state.listener(sid)
    running = serves_running_service(state, closer)
    fate = Fate.ABORTED if running else Fate.DISCARDED
    for cid in (*listener.queue, *(c.cid for c in state.deferred_on(sid))):
        state = put_connection(state, replace(state.connection(cid), fate=fate))
    closed = replace(
        listener, listening=False, queue=(), closed_early=listener.by_master and running
    )
    return put_listener(state, closed)


def close_descriptor(state: System, pid: int, sid: int) -> System:
    """Process ``pid`` closes its descriptor for ``sid``; the socket closes with its last one."""
    proc = state.process(pid)
    assert proc is not None, f"no process {pid}"
    assert sid in proc.fds, f"pid {pid} holds no descriptor for sid {sid}"
    state = put_process(state, replace(proc, fds=proc.fds - {sid}))
    if not state.holders(sid):
        state = close_listener(state, sid, proc)
    return state


def close_all_descriptors(state: System, pid: int) -> System:
    """Process ``pid`` closes every listening descriptor it holds, one by one."""
    proc = state.process(pid)
    assert proc is not None
    for sid in sorted(proc.fds):
        state = close_descriptor(state, pid, sid)
    return state


def exit_process(state: System, pid: int, in_flight: Fate = Fate.RESET) -> System:
    """Process ``pid`` exits (or is killed): the kernel closes its descriptors and connections.

    Connections it owned end with ``in_flight`` (RESET when it was killed). Its children are
    reparented to init. If its parent is gone, init reaps it at once; otherwise it stays in the
    table as a zombie until its master reaps it.
    """
    proc = state.process(pid)
    assert proc is not None
    assert proc.is_alive
    state = put_process(state, replace(proc, phase=Phase.DEAD, holds_mutex=False, stopped=False))
    state = close_all_descriptors(state, pid)
    for conn in state.owned(pid):
        state = put_connection(state, replace(conn, fate=in_flight))
    for child in state.children(pid):
        if child.is_alive:
            state = put_process(state, replace(child, parent=0))
        else:
            state = reaped_by_init(state, child.pid)
    if state.process(proc.parent) is None:
        state = reaped_by_init(state, pid)
    return state


def reaped_by_init(state: System, pid: int) -> System:
    """Init reaps zombie ``pid`` at once (its master is gone). No master is left to force-unlock
    the accept mutex it may name, and a new master allocates a fresh lock word, so the word the
    dead process held is released with it."""
    state = remove_process(state, pid)
    return replace(state, mutex=0) if state.mutex == pid else state


def bind_conflicts(state: System, port: int, reuseport: bool) -> bool:
    """True when bind() on ``port`` fails with EADDRINUSE (K15): another socket listens there
    and not both of them set SO_REUSEPORT (K7). SO_REUSEADDR does not help against a listener."""
    return any(
        lst.listening and lst.port == port and not (reuseport and lst.reuseport)
        for lst in state.listeners
    )


def open_listener(
    state: System,
    owner: int,
    port: int,
    *,
    reuseport: bool,
    slot: int,
    by_master: bool,
    backlog: int,
) -> System:
    """``owner`` calls socket, setsockopt, bind and listen; it holds the new socket.

    The caller checks :func:`bind_conflicts` first.
    """
    sid = len(state.listeners)
    listener = Listener(
        sid=sid,
        port=port,
        reuseport=reuseport,
        slot=slot,
        by_master=by_master,
        backlog=backlog,
    )
    state = replace(state, listeners=(*state.listeners, listener))
    proc = state.process(owner)
    assert proc is not None
    return put_process(state, replace(proc, fds=proc.fds | {sid}))


def listeners_on_port(state: System, port: int) -> tuple[Listener, ...]:
    """The sockets listening on ``port`` (several for a reuseport group)."""
    return tuple(lst for lst in state.listeners if lst.listening and lst.port == port)


def has_room(listener: Listener) -> bool:
    """True while the accept queue holds at most backlog connections, so one more fits (K13)."""
    return len(listener.queue) <= listener.backlog


def arrive(state: System, cid: int, listener: Listener, *, deferred: bool = False) -> System:
    """Connection ``cid``'s handshake completes on ``listener``: queued (or, ``deferred``, held
    back by TCP_DEFER_ACCEPT until its first byte, K19), or dropped when the queue is full.

    The queue holds at most backlog+1 connections (K13); a further SYN is dropped (K14).
    """
    if not has_room(listener):
        return put_connection(state, Connection(cid=cid, fate=Fate.DROPPED, listener=-1))
    if deferred:
        return put_connection(
            state, Connection(cid=cid, fate=Fate.DEFERRED, listener=listener.sid, held_back=True)
        )
    return enqueue(state, Connection(cid=cid, fate=Fate.QUEUED, listener=listener.sid))


def enqueue(state: System, conn: Connection) -> System:
    """``conn`` joins the tail of its listener's accept queue (accept() is FIFO, E1)."""
    listener = state.listener(conn.listener)
    state = put_listener(state, replace(listener, queue=(*listener.queue, conn.cid)))
    return put_connection(state, replace(conn, fate=Fate.QUEUED, held_back=False))
