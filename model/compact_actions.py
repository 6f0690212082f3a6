"""The twin of every action of :data:`forkshare.model.actions.ACTIONS`, on compact states.

Each function here has the name of a model action and enumerates, from a canonical compact state,
every enabled argument tuple of that action (in the order :meth:`Action.arguments` yields them)
and the canonical form of every successor (in the order the effect returns them), appending
``(name, args, successor)`` to a list. Read each one beside its model action: the guard's
conditions come in the same order, and the effect calls the twin of the same kernel function
(:mod:`forkshare.model.compact_kernel`).

In a canonical compact state the process with pid ``k`` is ``processes[k - 1]`` and a parent that
is gone is 0; the twins use both facts.

Discussion:
    *Why a hand-written twin of the actions.* The model's actions are the specification and stay
    as they are, frozen dataclasses and all: the proofs, the verifier and the docs read them.
    The explorer needs the same transitions an order of magnitude faster than
    ``dataclasses.replace`` allows. Generating the fast path from the action table would need
    the effects to be written in a restricted language; the model is plain Python, kept readable
    for its reviewers. So the twin is written by hand and held to the model by tests, not by
    construction: ``tests/model/test_compact.py`` compares, on every state of small explorations
    of every mode, every variant and every value of every ``Config`` field, the twin's
    (action, arguments, canonical successor) list with the model's, and fails when an action of
    the table has no twin or never fires in the comparison. An action without a twin (one the
    lead adds tomorrow) still works: the explorer runs the model's own action for it, through
    :func:`~forkshare.model.compact_state.decode` (slowly, but never wrongly).
"""

from __future__ import annotations

from collections.abc import Callable

from forkshare.model.compact_kernel import (
    Draft,
    new_connection,
    new_process,
    with_field,
    with_fields,
)
from forkshare.model.compact_rules import Rules
from forkshare.model.compact_state import (
    ABANDONED,
    ABORTED,
    ACCEPTED,
    C_ACCEPTS,
    C_FATE,
    C_HELD_BACK,
    C_LISTENER,
    C_OWNER,
    C_REQUESTED,
    C_WAKEUPS,
    CLOSED,
    DEAD,
    DEFERRED,
    DISCARDED,
    DROPPED,
    EXITING,
    FAST,
    GRACEFUL,
    HELPER,
    L_BACKLOG,
    L_LISTENING,
    L_PORT,
    L_QUEUE,
    L_SLOT,
    MASTER,
    NO_SHUTDOWN,
    P_ABANDONED,
    P_FDS,
    P_GENERATION,
    P_HOLDS_MUTEX,
    P_MASTER_KILLED,
    P_MUTEX_WORD,
    P_ORPHAN_ACCEPTS,
    P_OWNED,
    P_PARENT,
    P_PHASE,
    P_QUIT,
    P_ROLE,
    P_SHUTDOWN,
    P_SLOT,
    P_STOPPED,
    P_TERMINATE,
    QUEUED,
    REFUSED,
    RESET,
    RUNNING,
    S_CONNECTIONS,
    S_LISTENERS,
    S_MUTEX,
    S_PROCESSES,
    S_USAGE,
    SERVED,
    U_FAILED_STARTS,
    U_HELPERS,
    U_KILLS,
    U_MASTER_KILLS,
    U_RELOADS,
    U_SHUTDOWNS,
    U_STARTS,
    U_STOPS,
    U_UPGRADES,
    WORKER,
    Compact,
    Record,
)
from forkshare.model.compact_symmetry import inserted, removed, replaced

Successors = list[tuple[str, tuple[int, ...], Compact]]
"""Where the twins append ``(action name, arguments, canonical successor)``."""
Twin = Callable[[Rules, Compact, Successors], None]


def _use(draft: Draft, counter: int) -> None:
    draft.usage[counter] += 1


def _used(usage: tuple[int, ...], counter: int) -> tuple[int, ...]:
    return (*usage[:counter], usage[counter] + 1, *usage[counter + 1 :])


def _process(state: Compact, pid: int) -> Record | None:
    """The process with this pid in a canonical state, if any."""
    processes = state[S_PROCESSES]
    return processes[pid - 1] if 0 < pid <= len(processes) else None


def _can_command(record: Record | None) -> bool:
    """Twin of ``can_command``: a live master not told to shut down."""
    return (
        record is not None
        and record[P_ROLE] == MASTER
        and record[P_PHASE] != DEAD
        and record[P_SHUTDOWN] == NO_SHUTDOWN
    )


def _has_capacity(rules: Rules, record: Record) -> bool:
    """Twin of ``has_capacity``: a master holds any number of undelivered connections."""
    return record[P_ROLE] == MASTER or len(record[P_OWNED]) < rules.worker_connections


def _is_barred_orphan(rules: Rules, record: Record) -> bool:
    """Twin of ``is_barred_orphan`` (in a canonical state an orphan's parent is 0)."""
    return bool(
        rules.orphans_accept_nothing
        and record[P_ROLE] == WORKER
        and record[P_PARENT] == 0
        and not record[P_QUIT]
    )


def _is_waiting_on(rules: Rules, record: Record, sid: int, listener: Record) -> bool:
    """Twin of ``is_waiting_on``."""
    if record[P_PHASE] != RUNNING or record[P_STOPPED] or sid not in record[P_FDS]:
        return False
    if not listener[L_LISTENING] or not _has_capacity(rules, record):
        return False
    if _is_barred_orphan(rules, record):
        return False
    if rules.mode_passfd:
        return bool(record[P_ROLE] == MASTER and record[P_SHUTDOWN] == NO_SHUTDOWN)
    if record[P_ROLE] != WORKER:
        return False
    if rules.mode_mutex:
        return bool(record[P_HOLDS_MUTEX] and record[P_MUTEX_WORD])
    if rules.mode_reuseport:
        return bool(listener[L_SLOT] == record[P_SLOT])
    return True


def _with_process(
    state: Compact,
    index: int,
    record: Record,
    listeners: tuple[Record, ...],
    connections: tuple[Record, ...],
    mutex: int,
    usage: tuple[int, ...],
) -> Compact:
    """The canonical successor of ``state`` in which one process record changed (not its role or
    parent) along with the other parts given."""
    return replaced(state[S_PROCESSES], index, record, listeners, connections, mutex, usage)


def _exited(state: Compact, index: int, usage: tuple[int, ...], abandon: bool) -> Compact | None:
    """The successor in which the non-master at ``index`` exits (twin of ``exit_process``), when
    that is simple: its parent lives (so it stays a zombie), it has no child, and every socket it
    holds stays open (another process holds it too). None otherwise: use the draft. With
    ``abandon``, its requested connections are abandoned rather than reset."""
    processes = state[S_PROCESSES]
    r = processes[index]
    pid = index + 1
    if r[P_PARENT] == 0 or r[P_ROLE] == MASTER:
        return None
    for other in processes:
        if other[P_PARENT] == pid:
            return None
    for sid in r[P_FDS]:
        if not any(sid in other[P_FDS] for k, other in enumerate(processes) if k != index):
            return None
    connections = state[S_CONNECTIONS]
    if r[P_OWNED]:
        conns = list(connections)
        for cid in r[P_OWNED]:
            c = conns[cid]
            fate = ABANDONED if abandon and c[C_REQUESTED] else RESET
            conns[cid] = (fate, c[C_LISTENER], 0, *c[C_OWNER + 1 :])
        connections = tuple(conns)
    dead = (
        *r[:P_PHASE],
        DEAD,
        False,
        *r[P_QUIT:P_HOLDS_MUTEX],
        False,
        r[P_MUTEX_WORD],
        r[P_ORPHAN_ACCEPTS],
        (),
        (),
        *r[P_SHUTDOWN:],
    )
    return replaced(processes, index, dead, state[S_LISTENERS], connections, state[S_MUTEX], usage)


def _ended(state: Compact, cid: int, fate: int) -> Compact:
    """The canonical successor in which accepted connection ``cid`` ends with ``fate``: its owner
    forgets it (and the canonical form forgets the owner)."""
    connections = state[S_CONNECTIONS]
    conn = connections[cid]
    index = conn[C_OWNER] - 1
    owner = state[S_PROCESSES][index]
    record = with_field(owner, P_OWNED, tuple([c for c in owner[P_OWNED] if c != cid]))
    ended = (fate, conn[C_LISTENER], 0, *conn[C_OWNER + 1 :])
    conns = (*connections[:cid], ended, *connections[cid + 1 :])
    return _with_process(
        state, index, record, state[S_LISTENERS], conns, state[S_MUTEX], state[S_USAGE]
    )


# ---------------------------------------------------------------------------------------------
# Environment actions
# ---------------------------------------------------------------------------------------------


def start_master(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.start_master` (guard and effect)."""
    if any(r[P_ROLE] == MASTER and r[P_PHASE] != DEAD for r in state[S_PROCESSES]):
        return
    if state[S_USAGE][U_STARTS] >= rules.max_starts:
        return
    draft = Draft(state)
    _use(draft, U_STARTS)
    if rules.master_holds_listeners and draft.bind_conflicts(0, rules.mode_reuseport):
        _use(draft, U_FAILED_STARTS)
        out.append(("start_master", (), draft.freeze()))
        return
    pid = draft.next_pid()
    draft.add_process(pid, new_process(MASTER, 0, 1, -1, ()))
    draft.set_mutex(0)
    if rules.master_holds_listeners:
        _open_master_listeners(rules, draft, pid)
    out.append(("start_master", (), draft.freeze()))


def _open_master_listeners(rules: Rules, draft: Draft, pid: int) -> None:
    reuseport = rules.mode_reuseport
    for slot in range(rules.workers) if reuseport else range(1):
        draft.open_listener(
            pid,
            0,
            reuseport=reuseport,
            slot=slot if reuseport else -1,
            by_master=True,
            backlog=rules.backlog,
        )


def connect(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.connect` (guard and effect)."""
    connections = state[S_CONNECTIONS]
    if len(connections) >= rules.max_connections:
        return
    processes, listeners, mutex, usage = (
        state[S_PROCESSES],
        state[S_LISTENERS],
        state[S_MUTEX],
        state[S_USAGE],
    )
    cid = len(connections)
    candidates = [sid for sid, lst in enumerate(listeners) if lst[L_LISTENING] and lst[L_PORT] == 0]
    if not candidates:
        conns = (*connections, new_connection(REFUSED, -1))
        out.append(("connect", (), (processes, listeners, conns, mutex, usage)))
        return
    for sid in candidates:
        listener = listeners[sid]
        full = len(listener[L_QUEUE]) > listener[L_BACKLOG]
        for deferred in rules.defer_choices:
            if full:
                conns = (*connections, new_connection(DROPPED, -1))
                lsts = listeners
            elif deferred:
                conns = (*connections, new_connection(DEFERRED, sid, held_back=True))
                lsts = listeners
            else:
                conns = (*connections, new_connection(QUEUED, sid))
                queued = with_field(listener, L_QUEUE, (*listener[L_QUEUE], cid))
                lsts = (*listeners[:sid], queued, *listeners[sid + 1 :])
            out.append(("connect", (), (processes, lsts, conns, mutex, usage)))


def send_request(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.send_request` (guard and effect)."""
    connections = state[S_CONNECTIONS]
    listeners = state[S_LISTENERS]
    for cid, conn in enumerate(connections):
        fate = conn[C_FATE]
        if conn[C_REQUESTED]:
            continue
        if fate not in (DEFERRED, QUEUED, ACCEPTED) and not _is_silently_dropped(conn):
            continue
        lsts = listeners
        requested = with_field(conn, C_REQUESTED, True)
        if fate == DEFERRED:
            sid = conn[C_LISTENER]
            listener = listeners[sid]
            if len(listener[L_QUEUE]) <= listener[L_BACKLOG]:  # admitted with its first byte
                requested = with_fields(requested, {C_FATE: QUEUED, C_HELD_BACK: False})
                queued = with_field(listener, L_QUEUE, (*listener[L_QUEUE], cid))
                lsts = (*listeners[:sid], queued, *listeners[sid + 1 :])
        conns = (*connections[:cid], requested, *connections[cid + 1 :])
        succ = (state[S_PROCESSES], lsts, conns, state[S_MUTEX], state[S_USAGE])
        out.append(("send_request", (cid,), succ))


def _is_silently_dropped(conn: Record) -> bool:
    """Twin of ``observation.is_silently_dropped``: held back, then its listener closed, and the
    client has not sent anything (so it still believes it is connected)."""
    return bool(
        conn[C_FATE] in (ABORTED, DISCARDED) and conn[C_HELD_BACK] and not conn[C_REQUESTED]
    )


def close_connection(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.close_connection` (guard and effect)."""
    for cid, conn in enumerate(state[S_CONNECTIONS]):
        if conn[C_FATE] == ACCEPTED and not conn[C_REQUESTED]:
            out.append(("close_connection", (cid,), _ended(state, cid, CLOSED)))


def kill_worker(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.kill_worker` (guard and effect)."""
    if state[S_USAGE][U_KILLS] >= rules.max_kills:
        return
    for pid, r in enumerate(state[S_PROCESSES], 1):
        if r[P_ROLE] == WORKER and r[P_PHASE] != DEAD:
            succ = _exited(state, pid - 1, _used(state[S_USAGE], U_KILLS), abandon=False)
            if succ is None:
                draft = Draft(state)
                _use(draft, U_KILLS)
                draft.exit_process(pid)
                succ = draft.freeze()
            out.append(("kill_worker", (pid,), succ))


def stop_worker(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.stop_worker` (guard and effect)."""
    usage = state[S_USAGE]
    if usage[U_STOPS] >= rules.max_stops:
        return
    for index, r in enumerate(state[S_PROCESSES]):
        if r[P_ROLE] == WORKER and r[P_PHASE] != DEAD and not r[P_STOPPED]:
            succ = _with_process(
                state,
                index,
                with_field(r, P_STOPPED, True),
                state[S_LISTENERS],
                state[S_CONNECTIONS],
                state[S_MUTEX],
                _used(usage, U_STOPS),
            )
            out.append(("stop_worker", (index + 1,), succ))


def continue_worker(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.continue_worker` (guard and effect)."""
    for index, r in enumerate(state[S_PROCESSES]):
        if r[P_ROLE] == WORKER and r[P_STOPPED]:
            succ = _with_process(
                state,
                index,
                with_field(r, P_STOPPED, False),
                state[S_LISTENERS],
                state[S_CONNECTIONS],
                state[S_MUTEX],
                state[S_USAGE],
            )
            out.append(("continue_worker", (index + 1,), succ))


def reload(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.reload` (guard and effect)."""
    if state[S_USAGE][U_RELOADS] >= rules.max_reloads:
        return
    for pid, r in enumerate(state[S_PROCESSES], 1):
        if not _can_command(r) or (rules.reload_rebinds and not r[P_FDS]):
            continue
        draft = Draft(state)
        _use(draft, U_RELOADS)
        draft.processes[pid] = with_fields(r, {P_GENERATION: r[P_GENERATION] + 1, P_ABANDONED: ()})
        if rules.reload_rebinds:
            draft.close_all_descriptors(pid)
            _request_quit(draft, pid)
        out.append(("reload", (pid,), draft.freeze()))


def _request_quit(draft: Draft, pid: int) -> None:
    for child, r in draft.children(pid):
        if r[P_ROLE] == WORKER and r[P_PHASE] != DEAD:
            draft.set(child, P_QUIT, True)


def graceful_shutdown(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.graceful_shutdown` (guard and effect)."""
    if state[S_USAGE][U_SHUTDOWNS] >= rules.max_shutdowns:
        return
    for pid, r in enumerate(state[S_PROCESSES], 1):
        if _can_command(r):
            draft = Draft(state)
            draft.set(pid, P_SHUTDOWN, GRACEFUL)
            _use(draft, U_SHUTDOWNS)
            _request_quit(draft, pid)
            out.append(("graceful_shutdown", (pid,), draft.freeze()))


def fast_shutdown(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.fast_shutdown` (guard and effect)."""
    if state[S_USAGE][U_SHUTDOWNS] >= rules.max_shutdowns:
        return
    for pid, r in enumerate(state[S_PROCESSES], 1):
        if r[P_ROLE] != MASTER or r[P_PHASE] == DEAD or r[P_SHUTDOWN] == FAST:
            continue
        draft = Draft(state)
        draft.set(pid, P_SHUTDOWN, FAST)
        _use(draft, U_SHUTDOWNS)
        for cid in draft.owned(pid):
            draft.end_connection(cid, RESET)
        for child, c in draft.children(pid):
            if c[P_ROLE] == WORKER and c[P_PHASE] != DEAD:
                if c[P_STOPPED]:
                    draft.set(child, P_TERMINATE, True)
                else:
                    draft.exit_process(child)
        out.append(("fast_shutdown", (pid,), draft.freeze()))


def upgrade(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.upgrade` (guard and effect)."""
    if state[S_USAGE][U_UPGRADES] >= rules.max_upgrades:
        return
    processes = state[S_PROCESSES]
    for pid, r in enumerate(processes, 1):
        if not _can_command(r):
            continue
        parent = _process(state, r[P_PARENT])
        pending = any(
            c[P_PARENT] == pid and c[P_ROLE] == MASTER and c[P_PHASE] != DEAD for c in processes
        )
        if pending or (parent is not None and parent[P_ROLE] == MASTER and parent[P_PHASE] != DEAD):
            continue
        draft = Draft(state)
        _use(draft, U_UPGRADES)
        child = draft.fork(pid, MASTER, r[P_GENERATION] + 1, -1, None)
        if not draft.processes[child][P_FDS]:
            draft.exit_process(child)
        out.append(("upgrade", (pid,), draft.freeze()))


def kill_master(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.kill_master` (guard and effect)."""
    if state[S_USAGE][U_MASTER_KILLS] >= rules.max_master_kills:
        return
    for pid, r in enumerate(state[S_PROCESSES], 1):
        if r[P_ROLE] != MASTER or r[P_PHASE] == DEAD:
            continue
        draft = Draft(state)
        for child, c in draft.children(pid):
            if c[P_PHASE] != DEAD:
                draft.set(child, P_MASTER_KILLED, True)
        _use(draft, U_MASTER_KILLS)
        draft.exit_process(pid)
        out.append(("kill_master", (pid,), draft.freeze()))


# ---------------------------------------------------------------------------------------------
# Internal actions
# ---------------------------------------------------------------------------------------------


def spawn_worker(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.spawn_worker` (guard and effect)."""
    processes = state[S_PROCESSES]
    for pid, master in enumerate(processes, 1):
        if not _can_command(master):
            continue
        if rules.master_holds_listeners and not master[P_FDS]:
            continue
        generation = master[P_GENERATION]
        filled = {
            c[P_SLOT]
            for c in processes
            if c[P_PARENT] == pid and c[P_ROLE] == WORKER and c[P_GENERATION] == generation
        }
        for slot in range(rules.workers):
            if slot in master[P_ABANDONED] or slot in filled:
                continue
            for succ in _spawn_into(rules, state, pid, slot):
                out.append(("spawn_worker", (pid, slot), succ))


def _spawn_into(rules: Rules, state: Compact, pid: int, slot: int) -> list[Compact]:
    kept = [_kept(rules, state, slot)]
    if rules.receive_choices is not None:
        kept = [() if receives else None for receives in rules.receive_choices]
    generation = state[S_PROCESSES][pid - 1][P_GENERATION]
    successors = []
    for keep in kept:
        if rules.master_holds_listeners:
            fds = state[S_PROCESSES][pid - 1][P_FDS]
            if keep is not None:
                fds = tuple([sid for sid in fds if sid in keep])
            record = new_process(WORKER, pid, generation, slot, fds)
            successors.append(
                inserted(
                    state[S_PROCESSES],
                    record,
                    state[S_LISTENERS],
                    state[S_CONNECTIONS],
                    state[S_MUTEX],
                    state[S_USAGE],
                )
            )
            continue
        draft = Draft(state)
        child = draft.fork(pid, WORKER, generation, slot, keep)
        if not rules.master_holds_listeners:
            _bind_private(rules, draft, child, slot)
        successors.append(draft.freeze())
    return successors


def _bind_private(rules: Rules, draft: Draft, child: int, slot: int) -> None:
    if draft.bind_conflicts(0, reuseport=True):
        draft.exit_process(child)
        return
    draft.open_listener(child, 0, reuseport=True, slot=slot, by_master=False, backlog=rules.backlog)


def _kept(rules: Rules, state: Compact, slot: int) -> tuple[int, ...] | None:
    if rules.mode_passfd:
        return ()
    if rules.mode_reuseport and not rules.keep_all_clones:
        return tuple(sid for sid, lst in enumerate(state[S_LISTENERS]) if lst[L_SLOT] == slot)
    return None


def retire_generation(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.retire_generation` (guard and effect)."""
    processes = state[S_PROCESSES]
    for pid, master in enumerate(processes, 1):
        if not _can_command(master):
            continue
        generation = master[P_GENERATION]
        old = []
        for child, c in enumerate(processes, 1):
            if c[P_GENERATION] >= generation or c[P_PARENT] != pid or c[P_ROLE] != WORKER:
                continue  # the generation first: it rules out almost every process
            if c[P_PHASE] != DEAD and not c[P_QUIT]:
                old.append(child)
        if not old:
            continue
        draft = Draft(state)
        for child in old:
            draft.set(child, P_QUIT, True)
        out.append(("retire_generation", (pid,), draft.freeze()))


def rebind_listeners(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.rebind_listeners` (guard and effect)."""
    if not rules.reload_rebinds:
        return
    for pid, master in enumerate(state[S_PROCESSES], 1):
        if not _can_command(master) or master[P_FDS]:
            continue
        draft = Draft(state)
        if draft.bind_conflicts(0, rules.mode_reuseport):
            continue
        _open_master_listeners(rules, draft, pid)
        out.append(("rebind_listeners", (pid,), draft.freeze()))


def accept(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.accept` (guard and effect)."""
    listeners = state[S_LISTENERS]
    ready = [(sid, lst) for sid, lst in enumerate(listeners) if lst[L_QUEUE] and lst[L_LISTENING]]
    if not ready:
        return
    for index, r in enumerate(state[S_PROCESSES]):
        for sid, listener in ready:
            if _is_waiting_on(rules, r, sid, listener):
                out.append(("accept", (index + 1, sid), _accepted(rules, state, index, sid)))


def _accepted(rules: Rules, state: Compact, index: int, sid: int) -> Compact:
    processes, listeners, connections = state[S_PROCESSES], state[S_LISTENERS], state[S_CONNECTIONS]
    listener = listeners[sid]
    if rules.mode_poll:
        woken = sum(1 for p in processes if _is_waiting_on(rules, p, sid, listener))
    else:
        woken = 1
    cid, rest = listener[L_QUEUE][0], listener[L_QUEUE][1:]
    lsts = (*listeners[:sid], with_field(listener, L_QUEUE, rest), *listeners[sid + 1 :])
    r = processes[index]
    conn = connections[cid]
    accepted = (
        ACCEPTED,
        conn[C_LISTENER],
        index + 1,
        conn[C_ACCEPTS] + 1,
        r[P_ROLE] == MASTER,
        conn[C_REQUESTED],
        woken,
        *conn[C_WAKEUPS + 1 :],
    )
    conns = (*connections[:cid], accepted, *connections[cid + 1 :])
    owner = with_field(r, P_OWNED, tuple(sorted((*r[P_OWNED], cid))))
    if r[P_ROLE] == WORKER and r[P_PARENT] == 0 and not r[P_QUIT]:  # _count_orphan_accept
        owner = with_field(owner, P_ORPHAN_ACCEPTS, owner[P_ORPHAN_ACCEPTS] + 1)
    return _with_process(state, index, owner, lsts, conns, state[S_MUTEX], state[S_USAGE])


def acquire_mutex(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.acquire_mutex` (guard and effect)."""
    if not rules.mode_mutex or state[S_MUTEX] != 0:
        return
    for index, r in enumerate(state[S_PROCESSES]):
        if (
            r[P_ROLE] == WORKER
            and r[P_PHASE] == RUNNING
            and not r[P_STOPPED]
            and not r[P_QUIT]
            and r[P_FDS]
            and _has_capacity(rules, r)
            and not _is_barred_orphan(rules, r)
        ):
            holder = with_fields(r, {P_HOLDS_MUTEX: True, P_MUTEX_WORD: True})
            succ = _with_process(
                state,
                index,
                holder,
                state[S_LISTENERS],
                state[S_CONNECTIONS],
                index + 1,
                state[S_USAGE],
            )
            out.append(("acquire_mutex", (index + 1,), succ))


def release_mutex(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.release_mutex` (guard and effect)."""
    for index, r in enumerate(state[S_PROCESSES]):
        if r[P_ROLE] == WORKER and r[P_HOLDS_MUTEX] and r[P_PHASE] != DEAD and not r[P_STOPPED]:
            out.append(("release_mutex", (index + 1,), _dropped_mutex(state, index, {})))


def _dropped_mutex(state: Compact, index: int, changes: dict[int, object]) -> Compact:
    """The successor in which process ``index`` changes ``changes`` and stops believing it holds
    the mutex, unlocking the lock word if it names it."""
    mutex = state[S_MUTEX]
    changes[P_HOLDS_MUTEX] = False
    if mutex == index + 1:
        changes[P_MUTEX_WORD] = False
        mutex = 0
    record = with_fields(state[S_PROCESSES][index], changes)
    return _with_process(
        state, index, record, state[S_LISTENERS], state[S_CONNECTIONS], mutex, state[S_USAGE]
    )


def pass_connection(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.pass_connection` (guard and effect)."""
    processes = state[S_PROCESSES]
    for cid, conn in enumerate(state[S_CONNECTIONS]):
        if conn[C_FATE] != ACCEPTED:
            continue
        owner = conn[C_OWNER]
        master = _process(state, owner)
        if (
            master is None
            or master[P_ROLE] != MASTER
            or master[P_PHASE] == DEAD
            or master[P_STOPPED]
        ):
            continue
        for pid, worker in enumerate(processes, 1):
            if (
                worker[P_ROLE] == WORKER
                and worker[P_PARENT] == owner
                and worker[P_PHASE] == RUNNING
                and not worker[P_STOPPED]
                and _has_capacity(rules, worker)
            ):
                draft = Draft(state)
                draft.end_connection(cid, ACCEPTED)
                draft.connections[cid] = with_field(conn, C_OWNER, pid)
                draft.set(pid, P_OWNED, tuple(sorted((*worker[P_OWNED], cid))))
                out.append(("pass_connection", (cid, pid), draft.freeze()))


def _owner_can_serve(state: Compact, conn: Record) -> bool:
    owner = _process(state, conn[C_OWNER])
    return (
        owner is not None
        and owner[P_ROLE] == WORKER
        and owner[P_PHASE] != DEAD
        and not owner[P_STOPPED]
    )


def serve_request(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.serve_request` (guard and effect)."""
    for cid, conn in enumerate(state[S_CONNECTIONS]):
        if conn[C_FATE] == ACCEPTED and conn[C_REQUESTED] and _owner_can_serve(state, conn):
            out.append(("serve_request", (cid,), _ended(state, cid, SERVED)))


def close_idle_connection(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.close_idle_connection` (guard and effect)."""
    for cid, conn in enumerate(state[S_CONNECTIONS]):
        if conn[C_FATE] != ACCEPTED:
            continue
        worker_silent = not conn[C_REQUESTED] and _owner_can_serve(state, conn)
        if worker_silent or _owner_is_stopping_master(state, conn):
            out.append(("close_idle_connection", (cid,), _ended(state, cid, CLOSED)))


def _owner_is_stopping_master(state: Compact, conn: Record) -> bool:
    owner = _process(state, conn[C_OWNER])
    return (
        owner is not None
        and owner[P_ROLE] == MASTER
        and owner[P_PHASE] != DEAD
        and not owner[P_STOPPED]
        and owner[P_SHUTDOWN] != NO_SHUTDOWN
    )


def receive_listeners(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.receive_listeners` (guard and effect)."""
    if not rules.shared:
        return
    for index, r in enumerate(state[S_PROCESSES]):
        if r[P_ROLE] != WORKER or r[P_PHASE] != RUNNING or r[P_FDS]:
            continue
        if r[P_STOPPED] or r[P_QUIT] or r[P_TERMINATE]:
            continue
        master = _process(state, r[P_PARENT])
        if master is None or not _can_command(master) or not master[P_FDS]:
            continue
        record = with_field(r, P_FDS, master[P_FDS])
        succ = _with_process(
            state,
            index,
            record,
            state[S_LISTENERS],
            state[S_CONNECTIONS],
            state[S_MUTEX],
            state[S_USAGE],
        )
        out.append(("receive_listeners", (index + 1,), succ))


def admit_deferred(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.admit_deferred` (guard and effect)."""
    connections, listeners = state[S_CONNECTIONS], state[S_LISTENERS]
    for cid, conn in enumerate(connections):
        if conn[C_FATE] != DEFERRED:
            continue
        sid = conn[C_LISTENER]
        listener = listeners[sid]
        if len(listener[L_QUEUE]) <= listener[L_BACKLOG]:
            queued = with_field(listener, L_QUEUE, (*listener[L_QUEUE], cid))
            lsts = (*listeners[:sid], queued, *listeners[sid + 1 :])
            queued_conn = with_fields(conn, {C_FATE: QUEUED, C_HELD_BACK: False})
            conns = (*connections[:cid], queued_conn, *connections[cid + 1 :])
            succ = (state[S_PROCESSES], lsts, conns, state[S_MUTEX], state[S_USAGE])
            out.append(("admit_deferred", (cid,), succ))


def close_listeners(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.close_listeners` (guard and effect)."""
    for pid, r in enumerate(state[S_PROCESSES], 1):
        if not r[P_FDS] or r[P_PHASE] == DEAD or r[P_STOPPED]:
            continue
        if r[P_ROLE] == MASTER:
            if r[P_SHUTDOWN] == NO_SHUTDOWN:
                continue
        elif r[P_ROLE] != WORKER or r[P_PHASE] != EXITING:
            continue
        out.append(("close_listeners", (pid,), _closed_listeners(state, pid - 1)))


def _closed_listeners(state: Compact, index: int) -> Compact:
    """The successor in which the process at ``index`` closes its listening descriptors: only
    its record changes when another process still holds each socket (none closes); otherwise
    the draft closes them one by one."""
    processes = state[S_PROCESSES]
    r = processes[index]
    for sid in r[P_FDS]:
        if not any(sid in other[P_FDS] for k, other in enumerate(processes) if k != index):
            draft = Draft(state)
            draft.close_all_descriptors(index + 1)
            return draft.freeze()
    record = with_field(r, P_FDS, ())
    return _with_process(
        state,
        index,
        record,
        state[S_LISTENERS],
        state[S_CONNECTIONS],
        state[S_MUTEX],
        state[S_USAGE],
    )


def spawn_helper(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.spawn_helper` (guard and effect)."""
    if state[S_USAGE][U_HELPERS] >= rules.max_helpers:
        return
    for pid, r in enumerate(state[S_PROCESSES], 1):
        if _can_command(r):
            fds = () if rules.helpers_close else r[P_FDS]
            record = new_process(HELPER, pid, r[P_GENERATION], -1, fds)
            succ = inserted(
                state[S_PROCESSES],
                record,
                state[S_LISTENERS],
                state[S_CONNECTIONS],
                state[S_MUTEX],
                _used(state[S_USAGE], U_HELPERS),
            )
            out.append(("spawn_helper", (pid,), succ))


def exit_helper(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.exit_helper` (guard and effect)."""
    for pid, r in enumerate(state[S_PROCESSES], 1):
        if r[P_ROLE] == HELPER and r[P_PHASE] != DEAD and not r[P_STOPPED]:
            succ = _exited(state, pid - 1, state[S_USAGE], abandon=False)
            if succ is None:
                draft = Draft(state)
                draft.exit_process(pid)
                succ = draft.freeze()
            out.append(("exit_helper", (pid,), succ))


def begin_graceful_exit(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.begin_graceful_exit` (guard and effect)."""
    for index, r in enumerate(state[S_PROCESSES]):
        if r[P_ROLE] == WORKER and r[P_QUIT] and r[P_PHASE] == RUNNING and not r[P_STOPPED]:
            succ = _dropped_mutex(state, index, {P_PHASE: EXITING})
            out.append(("begin_graceful_exit", (index + 1,), succ))


def _notices_master_death(rules: Rules, record: Record) -> bool:
    """Twin of ``_notices_master_death`` (in a canonical state an orphan's parent is 0)."""
    return bool(record[P_PARENT] == 0 and (not record[P_QUIT] or record[P_MASTER_KILLED]))


def exit_worker(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.exit_worker` (guard and effect)."""
    for pid, r in enumerate(state[S_PROCESSES], 1):
        if r[P_ROLE] != WORKER or r[P_PHASE] == DEAD:
            continue
        notices = _notices_master_death(rules, r)
        if not (r[P_TERMINATE] and not r[P_STOPPED]) and not notices:
            if r[P_PHASE] != EXITING or r[P_STOPPED]:
                continue
            if r[P_OWNED] and rules.graceful_waits:
                continue
        abandon = not (r[P_TERMINATE] or notices)
        succ = _exited(state, pid - 1, state[S_USAGE], abandon)
        if succ is None:
            draft = Draft(state)
            if abandon:
                for cid in r[P_OWNED]:
                    if draft.connections[cid][C_REQUESTED]:
                        draft.end_connection(cid, ABANDONED)
            draft.exit_process(pid)
            succ = draft.freeze()
        out.append(("exit_worker", (pid,), succ))


def reap(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.reap` (guard and effect)."""
    for pid, r in enumerate(state[S_PROCESSES], 1):
        if r[P_PHASE] != DEAD:
            continue
        master = _process(state, r[P_PARENT])
        if master is None or master[P_ROLE] != MASTER or master[P_PHASE] == DEAD:
            continue
        if master[P_STOPPED]:
            continue
        succ = _reaped(rules, state, pid - 1)
        if succ is not None:
            out.append(("reap", (pid,), succ))
            continue
        draft = Draft(state)
        draft.remove_process(pid)
        if rules.force_unlock and draft.mutex == pid:
            draft.mutex = 0
        crashed = r[P_ROLE] == WORKER and r[P_GENERATION] == master[P_GENERATION]
        if crashed and not rules.respawn and master[P_SHUTDOWN] == NO_SHUTDOWN:
            abandoned = tuple(sorted({*master[P_ABANDONED], r[P_SLOT]}))
            draft.set(r[P_PARENT], P_ABANDONED, abandoned)
        out.append(("reap", (pid,), draft.freeze()))


def _reaped(rules: Rules, state: Compact, index: int) -> Compact | None:
    """The successor of reaping the non-master zombie at ``index`` when its master is the only
    one (so its record keeps its place); None otherwise."""
    processes = state[S_PROCESSES]
    r = processes[index]
    if (
        r[P_ROLE] == MASTER
        or r[P_PARENT] != 1
        or (len(processes) > 1 and processes[1][P_ROLE] == MASTER)
    ):
        return None
    master = processes[0]
    mutex = state[S_MUTEX]
    if rules.force_unlock and mutex == index + 1:
        mutex = 0
    crashed = r[P_ROLE] == WORKER and r[P_GENERATION] == master[P_GENERATION]
    if crashed and not rules.respawn and master[P_SHUTDOWN] == NO_SHUTDOWN:
        abandoned = tuple(sorted({*master[P_ABANDONED], r[P_SLOT]}))
        processes = (with_field(master, P_ABANDONED, abandoned), *processes[1:])
    return removed(
        processes, index, state[S_LISTENERS], state[S_CONNECTIONS], mutex, state[S_USAGE]
    )


def exit_master(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.exit_master` (guard and effect)."""
    processes = state[S_PROCESSES]
    for pid, r in enumerate(processes, 1):
        if r[P_ROLE] != MASTER or r[P_PHASE] == DEAD or r[P_SHUTDOWN] == NO_SHUTDOWN:
            continue
        if r[P_OWNED]:
            continue
        if any(
            c[P_PARENT] == pid
            and c[P_ROLE] == WORKER
            and c[P_PHASE] != DEAD
            and not (c[P_QUIT] or c[P_TERMINATE])
            for c in processes
        ):
            continue
        draft = Draft(state)
        draft.exit_process(pid)
        out.append(("exit_master", (pid,), draft.freeze()))


def kill_stragglers(rules: Rules, state: Compact, out: Successors) -> None:
    """Twin of :func:`~forkshare.model.actions.kill_stragglers` (guard and effect)."""
    processes = state[S_PROCESSES]
    for pid, r in enumerate(processes, 1):
        if r[P_ROLE] != MASTER or r[P_PHASE] == DEAD or r[P_SHUTDOWN] == NO_SHUTDOWN:
            continue
        fast = r[P_SHUTDOWN] == FAST  # a graceful stop's timeout kills only the stopped ones
        stragglers = [
            child
            for child, c in enumerate(processes, 1)
            if c[P_PARENT] == pid
            and c[P_ROLE] == WORKER
            and c[P_PHASE] != DEAD
            and (fast or c[P_STOPPED])
        ]
        if not stragglers:
            continue
        draft = Draft(state)
        for child in stragglers:
            draft.exit_process(child)
        out.append(("kill_stragglers", (pid,), draft.freeze()))


TWINS: dict[str, Twin] = {
    twin.__name__: twin
    for twin in (
        start_master,
        connect,
        send_request,
        close_connection,
        kill_worker,
        stop_worker,
        continue_worker,
        reload,
        graceful_shutdown,
        fast_shutdown,
        upgrade,
        kill_master,
        spawn_worker,
        retire_generation,
        rebind_listeners,
        accept,
        acquire_mutex,
        release_mutex,
        pass_connection,
        serve_request,
        close_idle_connection,
        receive_listeners,
        admit_deferred,
        close_listeners,
        spawn_helper,
        exit_helper,
        begin_graceful_exit,
        exit_worker,
        reap,
        exit_master,
        kill_stragglers,
    )
}
"""The compact twin of each action, by the action's name."""

CAN_EVER_FIRE: dict[str, Callable[[Rules], bool]] = {
    "start_master": lambda rules: rules.max_starts > 0,
    "connect": lambda rules: rules.max_connections > 0,
    "kill_worker": lambda rules: rules.max_kills > 0,
    "stop_worker": lambda rules: rules.max_stops > 0,
    "reload": lambda rules: rules.max_reloads > 0,
    "graceful_shutdown": lambda rules: rules.max_shutdowns > 0,
    "fast_shutdown": lambda rules: rules.max_shutdowns > 0,
    "upgrade": lambda rules: rules.max_upgrades > 0,
    "kill_master": lambda rules: rules.max_master_kills > 0,
    "rebind_listeners": lambda rules: rules.reload_rebinds,
    "acquire_mutex": lambda rules: rules.mode_mutex,
    "receive_listeners": lambda rules: rules.shared,
    "spawn_helper": lambda rules: rules.max_helpers > 0,
}
"""Actions whose guard has a conjunct that depends on the configuration alone (a budget above 0,
a mode, a policy): under a configuration where it is false, the explorer does not even call the
twin. Each is the first test its twin makes."""
