"""The model's actions, each a guard ``can_<name>`` and an effect ``<name>``, and the one table.

Environment actions are what a client or an operator can do to a real server (connect, send a
request, SIGKILL/SIGSTOP/SIGCONT a worker, signal the master). Internal actions are what the server
and the kernel choose (which worker accepts, mutex acquisition, spawn, reap, exit, when to close
a listener). Every effect returns the tuple of possible successors; nondeterminism is explicit.

The default signal names follow nginx (N-facts): HUP reload, QUIT graceful, TERM fast, USR2
upgrade; a target's profile maps its own signals onto these actions. A master's reaction to its
signal is part of the same step (masters are never stopped here); a worker's reaction to QUIT is a
step of its own (``begin_graceful_exit``), because a stopped worker cannot react.

Discussion:
    *A specification, not nginx.* Where correct servers differ (F1–F10,
    :mod:`forkshare.model.freedoms`) and no property depends on the choice, the choice is an
    internal step that may happen anywhere in its window, never a fixed order: a stopping master
    or an exiting worker closes its listening descriptors whenever it likes before it exits
    (``close_listeners``, F1, F2); a worker closes a connection whose request never came whenever
    its read timeout says so (``close_idle_connection``, F3); a reload forks the new generation and
    retires the old one in either order (F4, K20: a re-exec'd master keeps its listeners and does
    the same); a worker may receive the listener over SCM_RIGHTS after fork
    (``receive_listeners``, F5); a TCP_DEFER_ACCEPT listener admits a connection to its queue only
    when its first byte arrives (``admit_deferred``, F6, K19); a stopping master may exit before
    its workers once it has told them (F8); a dead worker is replaced whenever the master gets to
    it (F10). Properties are stated on what must never happen, so each freedom only adds states.

    *Which idle worker accepts is a free choice, not the kernel's FIFO order.* Linux wakes blocking
    acceptors in FIFO order (K3) and EPOLLEXCLUSIVE waiters first-registered-first (K6). Modelling
    the wait queues' order would multiply the state space by the orderings of the workers, and the
    safety invariants do not depend on it. The model therefore lets any waiting worker accept; the
    verifier makes the real choice controllable by stopping workers (SIGSTOP), and measures
    fairness as a statistic, not as an invariant.

    *A graceful stop answers the requests in hand, even across the master's exit.* A worker told
    to quit gracefully exits only once it owns nothing (it answers requested connections and
    closes the silent ones). Only a SIGKILL, a fast stop (TERM) or the master's SIGKILL excuse a
    reset in hand; an orphan whose master exited after a graceful stop (F8) must still finish.
    This rules out a server whose workers die with their master (PR_SET_PDEATHSIG) when that
    master exits before them on a graceful stop: its requests in hand are lost.

    *A master in passfd mode holds any number of undelivered connections.* Node's primary keeps
    its copy of each handle it sent until the worker acknowledges it, and sends more to other
    workers meanwhile (a stopped worker's handles wait in its channel). The connection budget
    keeps the state space finite. A handle in flight to a stopped worker when the primary dies
    is not modelled (it outlives the primary in the channel until the worker resumes).
"""

from __future__ import annotations

from dataclasses import replace

from forkshare.model.config import Config, Mode
from forkshare.model.kernel import (
    arrive,
    bind_conflicts,
    close_all_descriptors,
    enqueue,
    exit_process,
    fork,
    has_room,
    listeners_on_port,
    open_listener,
    put_connection,
    put_process,
    remove_process,
)
from forkshare.model.observation import is_silently_dropped
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
from forkshare.model.table import Action, Kind, Param

# ---------------------------------------------------------------------------------------------
# Queries the guards share
# ---------------------------------------------------------------------------------------------


def has_capacity(config: Config, state: System, proc: Process) -> bool:
    """True when ``proc`` serves fewer connections than it may (a passfd master keeps a copy of
    every connection it handed off until the worker acknowledges it: any number)."""
    if proc.is_master:
        return True
    return len(state.owned(proc.pid)) < config.worker_connections


def is_barred_orphan(config: Config, state: System, proc: Process) -> bool:
    """True for an orphan that may accept nothing: workers notice the master's death at once,
    and it was not told to stop before (a told worker may go on accepting until it acts on the stop, F8)."""
    return config.orphans_accept_nothing and state.is_orphan(proc) and not proc.quit_requested


def defer_choices(config: Config) -> tuple[bool, ...]:
    """Whether a new connection is held back by TCP_DEFER_ACCEPT: as pinned, or either (F6)."""
    return (False, True) if config.defer_accept is None else (config.defer_accept,)


def is_waiting_on(config: Config, state: System, proc: Process, listener: Listener) -> bool:
    """True when ``proc`` sleeps in accept (or epoll) on ``listener`` and can take a connection."""
    if proc.phase is not Phase.RUNNING or proc.stopped or listener.sid not in proc.fds:
        return False
    if not listener.listening or not has_capacity(config, state, proc):
        return False
    if is_barred_orphan(config, state, proc):
        return False
    if config.mode is Mode.PASSFD:
        return proc.is_master and proc.shutdown is Shutdown.NONE
    if not proc.is_worker:
        return False
    if config.mode is Mode.MUTEX:
        return proc.holds_mutex and state.mutex == proc.pid
    if config.mode is Mode.REUSEPORT:
        return listener.slot == proc.slot
    return True


def waiters(config: Config, state: System, listener: Listener) -> tuple[Process, ...]:
    """Every process waiting on ``listener``."""
    return tuple(p for p in state.processes if is_waiting_on(config, state, p, listener))


def wakeups_for_arrival(config: Config, state: System, listener: Listener) -> int:
    """How many waiters one arriving connection wakes: all of them in poll mode (K4), else one."""
    if config.mode is Mode.POLL:
        return len(waiters(config, state, listener))
    return 1


def slot_is_filled(state: System, master: Process, slot: int) -> bool:
    """True when ``master`` has a worker (even a zombie) in ``slot`` of its current generation."""
    return any(
        c.is_worker and c.generation == master.generation and c.slot == slot
        for c in state.children(master.pid)
    )


def can_command(proc: Process | None) -> bool:
    """True for a live master that has not been told to shut down."""
    return proc is not None and proc.is_master and proc.is_alive and proc.shutdown is Shutdown.NONE


def _process(state: System, pid: int) -> Process:
    proc = state.process(pid)
    assert proc is not None
    return proc


def _use(state: System, **counts: int) -> System:
    usage = state.usage
    return replace(
        state, usage=replace(usage, **{k: getattr(usage, k) + v for k, v in counts.items()})
    )


# ---------------------------------------------------------------------------------------------
# Environment actions: what a client or an operator does
# ---------------------------------------------------------------------------------------------


def can_start_master(config: Config, state: System) -> bool:
    """No master is alive, and the start budget allows one more."""
    return not state.live_masters and state.usage.starts < config.bounds.starts


def start_master(config: Config, state: System) -> tuple[System, ...]:
    """A master starts and opens its listening sockets, or fails with EADDRINUSE (orphans hold it)."""
    state = _use(state, starts=1)
    reuseport = config.mode is Mode.REUSEPORT
    if config.master_holds_listeners and bind_conflicts(state, 0, reuseport):
        return (_use(state, failed_starts=1),)
    pid = state.next_pid
    master = Process(pid=pid, role=Role.MASTER, parent=0, generation=1, slot=-1)
    # A new master allocates a fresh shared zone, so its accept mutex starts free.
    state = replace(put_process(state, master), mutex=0)
    if not config.master_holds_listeners:
        return (state,)
    return (_open_master_listeners(config, state, pid),)


def _open_master_listeners(config: Config, state: System, pid: int) -> System:
    """The master binds its listening sockets: one shared, or one per slot in reuseport mode."""
    reuseport = config.mode is Mode.REUSEPORT
    for slot in range(config.workers) if reuseport else range(1):
        state = open_listener(
            state,
            pid,
            0,
            reuseport=reuseport,
            slot=slot if reuseport else -1,
            by_master=True,
            backlog=config.backlog,
        )
    return state


def can_connect(config: Config, state: System) -> bool:
    """The connection budget allows one more client."""
    return len(state.connections) < config.bounds.connections


def connect(config: Config, state: System) -> tuple[System, ...]:
    """A client connects: refused if nothing listens; else the kernel picks a socket (the reuseport
    hash: any member of the group) and queues the connection (or holds it back until its first
    byte, TCP_DEFER_ACCEPT, K19), or drops the SYN when the queue is full."""
    cid = len(state.connections)
    candidates = listeners_on_port(state, 0)
    if not candidates:
        return (put_connection(state, Connection(cid=cid, fate=Fate.REFUSED, listener=-1)),)
    return tuple(
        arrive(state, cid, listener, deferred=deferred)
        for listener in candidates
        for deferred in defer_choices(config)
    )


def can_send_request(config: Config, state: System, cid: int) -> bool:
    """The client believes it is connected (held back, queued, accepted, or silently dropped
    while held back, K19) and has not sent its request yet."""
    conn = state.connection(cid)
    waiting = conn.fate in (Fate.DEFERRED, Fate.QUEUED, Fate.ACCEPTED)
    return (waiting or is_silently_dropped(conn)) and not conn.requested


def send_request(config: Config, state: System, cid: int) -> tuple[System, ...]:
    """The client sends its request. A connection held back by TCP_DEFER_ACCEPT is admitted to
    the accept queue with its first byte, unless the queue is full (then the kernel drops the
    segment and the client retransmits: it stays held back, K14, K19)."""
    conn = replace(state.connection(cid), requested=True)
    if conn.fate is Fate.DEFERRED and has_room(state.listener(conn.listener)):
        return (enqueue(state, conn),)
    return (put_connection(state, conn),)


def can_close_connection(config: Config, state: System, cid: int) -> bool:
    """The client holds an accepted connection on which it never sent a request."""
    conn = state.connection(cid)
    return conn.fate is Fate.ACCEPTED and not conn.requested


def close_connection(config: Config, state: System, cid: int) -> tuple[System, ...]:
    """The client gives up and closes; the worker's capacity is freed."""
    return (put_connection(state, replace(state.connection(cid), fate=Fate.CLOSED)),)


def can_kill_worker(config: Config, state: System, pid: int) -> bool:
    """A live worker, and the kill budget allows one more SIGKILL."""
    return state.live(pid, Role.WORKER) is not None and state.usage.kills < config.bounds.kills


def kill_worker(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """SIGKILL a worker: its descriptors close, its connections in flight are reset."""
    return (exit_process(_use(state, kills=1), pid),)


def can_stop_worker(config: Config, state: System, pid: int) -> bool:
    """A live, running worker, and the stop budget allows one more SIGSTOP."""
    proc = state.live(pid, Role.WORKER)
    return proc is not None and not proc.stopped and state.usage.stops < config.bounds.stops


def stop_worker(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """SIGSTOP a worker: it takes no step (but keeps its descriptors and its mutex) until SIGCONT."""
    return (put_process(_use(state, stops=1), replace(_process(state, pid), stopped=True)),)


def can_continue_worker(config: Config, state: System, pid: int) -> bool:
    """A stopped worker."""
    proc = state.process(pid)
    return proc is not None and proc.stopped


def continue_worker(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """SIGCONT a stopped worker."""
    return (put_process(state, replace(_process(state, pid), stopped=False)),)


def can_reload(config: Config, state: System, pid: int) -> bool:
    """A commandable master (with its sockets, in the rebind design), within the reload budget."""
    proc = state.process(pid)
    if not can_command(proc) or state.usage.reloads >= config.bounds.reloads:
        return False
    assert proc is not None
    return not config.reload_rebinds or bool(proc.fds)


def reload(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """HUP: start a new generation. Safe design: keep the sockets; workers are forked next.
    Rebind design: close the sockets and tell the old workers to quit now, bind again later."""
    master = _process(state, pid)
    state = put_process(
        _use(state, reloads=1),
        replace(master, generation=master.generation + 1, abandoned=frozenset()),
    )
    if not config.reload_rebinds:
        return (state,)
    state = close_all_descriptors(state, pid)
    return (_request_quit(state, pid),)


def can_graceful_shutdown(config: Config, state: System, pid: int) -> bool:
    """A commandable master, within the shutdown budget."""
    return can_command(state.process(pid)) and state.usage.shutdowns < config.bounds.shutdowns


def graceful_shutdown(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """QUIT: the master stops accepting and tells its workers to quit. It closes its own
    listening descriptors at any point before it exits (F1), and a passfd master still hands on
    the connections it holds, or closes them (``close_idle_connection``), before it exits."""
    master = replace(_process(state, pid), shutdown=Shutdown.GRACEFUL)
    state = put_process(_use(state, shutdowns=1), master)
    return (_request_quit(state, pid),)


def can_fast_shutdown(config: Config, state: System, pid: int) -> bool:
    """A live master not already stopping fast, within the shutdown budget."""
    proc = state.live(pid, Role.MASTER)
    return (
        proc is not None
        and proc.shutdown is not Shutdown.FAST
        and state.usage.shutdowns < config.bounds.shutdowns
    )


def fast_shutdown(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """TERM: the master resets its undelivered connections and sends TERM to its workers. A
    running worker exits at once; a stopped one acts on it only when continued, or dies by the
    master's SIGKILL escalation (``kill_stragglers``). The master closes its own listening
    descriptors at any point before it exits (F1: nginx keeps them until it exits on TERM)."""
    master = replace(_process(state, pid), shutdown=Shutdown.FAST)
    state = put_process(_use(state, shutdowns=1), master)
    for conn in state.owned(pid):
        state = put_connection(state, replace(conn, fate=Fate.RESET))
    for child in state.children(pid):
        if child.is_worker and child.is_alive:
            if child.stopped:
                state = put_process(state, replace(child, terminate_requested=True))
            else:
                state = exit_process(state, child.pid)
    return (state,)


def can_kill_stragglers(config: Config, state: System, pid: int) -> bool:
    """A master stopping fast still has live workers (stopped ones ignored its TERM), or one
    stopping gracefully has a stopped worker (which cannot finish: its graceful timeout)."""
    proc = state.live(pid, Role.MASTER)
    return proc is not None and bool(_stragglers(state, proc))


def kill_stragglers(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """The escalation: nginx re-sends TERM with a doubling delay, then SIGKILL, which even a
    stopped worker cannot ignore; a graceful stop's timeout (nginx worker_shutdown_timeout,
    gunicorn graceful_timeout) kills the workers that could not finish."""
    for child in _stragglers(state, _process(state, pid)):
        state = exit_process(state, child.pid)
    return (state,)


def _stragglers(state: System, master: Process) -> tuple[Process, ...]:
    live = [c for c in state.children(master.pid) if c.is_worker and c.is_alive]
    if master.shutdown is Shutdown.FAST:
        return tuple(live)
    if master.shutdown is Shutdown.GRACEFUL:
        return tuple(c for c in live if c.stopped)
    return ()


def can_upgrade(config: Config, state: System, pid: int) -> bool:
    """USR2 to a commandable master that is not itself a new binary and has none pending (P12)."""
    proc = state.process(pid)
    if not can_command(proc) or state.usage.upgrades >= config.bounds.upgrades:
        return False
    assert proc is not None
    parent = state.process(proc.parent)
    pending = any(c.is_master and c.is_alive for c in state.children(pid))
    return not pending and not (parent is not None and parent.is_master and parent.is_alive)


def upgrade(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """USR2: fork and exec a new master that inherits the listening descriptors (K18).

    A new master that inherits no listening socket cannot start (gunicorn --reuse-port, G3): it
    exits at once and its parent keeps serving.
    """
    master = _process(state, pid)
    state = fork(_use(state, upgrades=1), master, Role.MASTER, master.generation + 1, -1)
    child = _process(state, state.processes[-1].pid)
    if not child.fds:
        state = exit_process(state, child.pid)
    return (state,)


def can_kill_master(config: Config, state: System, pid: int) -> bool:
    """A live master, within the master-kill budget."""
    return (
        state.live(pid, Role.MASTER) is not None
        and state.usage.master_kills < config.bounds.master_kills
    )


def kill_master(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """SIGKILL the master: its descriptors close; its children are reparented to init (orphans)
    and remember how their master died (a reset in hand is then excused)."""
    for child in state.children(pid):
        if child.is_alive:
            state = put_process(state, replace(child, master_killed=True))
    return (exit_process(_use(state, master_kills=1), pid),)


# ---------------------------------------------------------------------------------------------
# Internal actions: what the server and the kernel choose
# ---------------------------------------------------------------------------------------------


def can_spawn_worker(config: Config, state: System, pid: int, slot: int) -> bool:
    """A commandable master with an empty, not abandoned slot in its current generation, and
    sockets to hand down (unless workers make their own)."""
    master = state.process(pid)
    if not can_command(master):
        return False
    assert master is not None
    if slot in master.abandoned or slot_is_filled(state, master, slot):
        return False
    return not config.master_holds_listeners or bool(master.fds)


def spawn_worker(config: Config, state: System, pid: int, slot: int) -> tuple[System, ...]:
    """The master forks a worker into ``slot``; it inherits the master's sockets (K1), or, in a
    shared mode, may get them later over SCM_RIGHTS (F5, ``receive_listeners``). With private
    reuseport the worker binds its own socket into the port's group after fork."""
    master = _process(state, pid)
    kept = [_kept(config, state, slot)]
    if config.is_shared and config.workers_receive_listeners is not False:
        kept = [frozenset()] if config.workers_receive_listeners else [None, frozenset()]
    forked = [fork(state, master, Role.WORKER, master.generation, slot, keep) for keep in kept]
    if config.master_holds_listeners:
        return tuple(forked)
    return tuple(
        succ for child_state in forked for succ in _bind_private(config, child_state, slot)
    )


def _bind_private(config: Config, state: System, slot: int) -> tuple[System, ...]:
    """The new worker (the last process) binds its own reuseport socket, or dies of EADDRINUSE."""
    child = state.processes[-1]
    if bind_conflicts(state, 0, reuseport=True):
        return (exit_process(state, child.pid),)
    return (
        open_listener(
            state,
            child.pid,
            0,
            reuseport=True,
            slot=slot,
            by_master=False,
            backlog=config.backlog,
        ),
    )


def _kept(config: Config, state: System, slot: int) -> frozenset[int] | None:
    """Which inherited sockets a new worker keeps: passfd workers keep none (only the master
    accepts, Node's SCHED_RR); reuseport workers that close the other clones keep their slot's."""
    if config.mode is Mode.PASSFD:
        return frozenset()
    if config.mode is Mode.REUSEPORT and not config.workers_keep_all_clones:
        return frozenset(lst.sid for lst in state.listeners if lst.slot == slot)
    return None


def can_receive_listeners(config: Config, state: System, pid: int) -> bool:
    """Shared modes: a running worker without a listener, whose master still serves and holds
    its listeners, can be sent them (SCM_RIGHTS, K16)."""
    proc = state.live(pid, Role.WORKER)
    if proc is None or not config.is_shared or proc.fds or proc.phase is not Phase.RUNNING:
        return False
    master = state.process(proc.parent)
    return (
        not proc.stopped
        and not proc.was_told_to_stop
        and can_command(master)
        and master is not None
        and bool(master.fds)
    )


def receive_listeners(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """The master sends its listening descriptors over a Unix socket (Node cluster SCHED_NONE,
    F5): the worker's new descriptors refer to the same open sockets (K16)."""
    proc = _process(state, pid)
    master = _process(state, proc.parent)
    return (put_process(state, replace(proc, fds=master.fds)),)


def can_retire_generation(config: Config, state: System, pid: int) -> bool:
    """A commandable master that reloaded still has a worker of an older generation not yet
    told to quit. Whether the new generation is forked first (nginx, gunicorn) or after
    (Apache's graceful restart, a re-exec'd master) is the server's choice (F4, K20)."""
    master = state.process(pid)
    return can_command(master) and master is not None and bool(_old_workers(state, master))


def retire_generation(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """The master tells the previous generation's workers to quit gracefully (QUIT)."""
    master = _process(state, pid)
    for old in _old_workers(state, master):
        state = put_process(state, replace(old, quit_requested=True))
    return (state,)


def _old_workers(state: System, master: Process) -> tuple[Process, ...]:
    return tuple(
        c
        for c in state.children(master.pid)
        if c.is_worker and c.is_alive and c.generation < master.generation and not c.quit_requested
    )


def _request_quit(state: System, pid: int) -> System:
    for child in state.children(pid):
        if child.is_worker and child.is_alive:
            state = put_process(state, replace(child, quit_requested=True))
    return state


def can_rebind_listeners(config: Config, state: System, pid: int) -> bool:
    """Rebind design only: a commandable master without sockets, and the port free again."""
    master = state.process(pid)
    return (
        config.reload_rebinds
        and can_command(master)
        and master is not None
        and not master.fds
        and not bind_conflicts(state, 0, config.mode is Mode.REUSEPORT)
    )


def rebind_listeners(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """The master binds fresh listening sockets (new identities) after a rebinding reload."""
    return (_open_master_listeners(config, state, pid),)


def can_accept(config: Config, state: System, pid: int, sid: int) -> bool:
    """``pid`` waits on socket ``sid`` (per the mode) and a connection is queued there."""
    proc = state.process(pid)
    listener = state.listener(sid)
    return (
        proc is not None and bool(listener.queue) and is_waiting_on(config, state, proc, listener)
    )


def accept(config: Config, state: System, pid: int, sid: int) -> tuple[System, ...]:
    """accept() returns the oldest queued connection (FIFO, E1); the others woken get EAGAIN."""
    listener = state.listener(sid)
    woken = wakeups_for_arrival(config, state, listener)
    cid, rest = listener.queue[0], listener.queue[1:]
    state = replace(
        state,
        listeners=tuple(
            replace(lst, queue=rest) if lst.sid == sid else lst for lst in state.listeners
        ),
    )
    proc = _process(state, pid)
    conn = state.connection(cid)
    state = put_connection(
        state,
        replace(
            conn,
            fate=Fate.ACCEPTED,
            owner=pid,
            accepts=conn.accepts + 1,
            by_master=proc.is_master,
            wakeups=woken,
        ),
    )
    return (_count_orphan_accept(state, proc),)


def _count_orphan_accept(state: System, proc: Process) -> System:
    if not state.is_orphan(proc) or proc.quit_requested:
        return state
    current = _process(state, proc.pid)
    return put_process(state, replace(current, orphan_accepts=current.orphan_accepts + 1))


def can_acquire_mutex(config: Config, state: System, pid: int) -> bool:
    """Mutex mode: the lock word is free and ``pid`` is a worker ready to accept (ngx_shmtx_trylock)."""
    proc = state.process(pid)
    return (
        config.mode is Mode.MUTEX
        and state.mutex == 0
        and proc is not None
        and proc.is_worker
        and proc.phase is Phase.RUNNING
        and not proc.stopped
        and not proc.quit_requested
        and bool(proc.fds)
        and has_capacity(config, state, proc)
        and not is_barred_orphan(config, state, proc)
    )


def acquire_mutex(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """The worker writes its pid into the free lock word (CAS 0 → pid) and registers the sockets."""
    proc = replace(_process(state, pid), holds_mutex=True)
    return (replace(put_process(state, proc), mutex=pid),)


def can_release_mutex(config: Config, state: System, pid: int) -> bool:
    """``pid`` believes it holds the mutex and can run."""
    proc = state.process(pid)
    return proc is not None and proc.holds_mutex and proc.can_run


def release_mutex(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """The holder unlocks (CAS pid → 0) after its accepts, before it serves (nginx posted events)."""
    state = put_process(state, replace(_process(state, pid), holds_mutex=False))
    return (replace(state, mutex=0) if state.mutex == pid else state,)


def can_pass_connection(config: Config, state: System, cid: int, pid: int) -> bool:
    """Passfd: a master owns connection ``cid`` and its worker ``pid``, running and not yet acting
    on a stop, can take one more (Node's primary hands on what it sent before a stop, F8)."""
    conn = state.connection(cid)
    worker = state.process(pid)
    if conn.fate is not Fate.ACCEPTED or worker is None or not worker.is_worker:
        return False
    master = state.process(conn.owner)
    return (
        master is not None
        and master.is_master
        and master.can_run
        and worker.parent == master.pid
        and worker.phase is Phase.RUNNING
        and not worker.stopped
        and has_capacity(config, state, worker)
    )


def pass_connection(config: Config, state: System, cid: int, pid: int) -> tuple[System, ...]:
    """sendmsg(SCM_RIGHTS): the worker receives the connection (K16); the master closes its copy."""
    return (put_connection(state, replace(state.connection(cid), owner=pid)),)


def can_serve_request(config: Config, state: System, cid: int) -> bool:
    """An accepted, requested connection whose worker can run (an orphan answers what it has in
    hand: only accepting after the master's death is what parent-death policies are about)."""
    conn = state.connection(cid)
    if conn.fate is not Fate.ACCEPTED or not conn.requested:
        return False
    proc = state.process(conn.owner)
    return proc is not None and proc.is_worker and proc.can_run


def serve_request(config: Config, state: System, cid: int) -> tuple[System, ...]:
    """The worker responds and closes the connection (one request per connection)."""
    conn = state.connection(cid)
    return (put_connection(state, replace(conn, fate=Fate.SERVED)),)


def can_close_idle_connection(config: Config, state: System, cid: int) -> bool:
    """A worker that can run owns an accepted connection whose request has not arrived, or a
    stopping master holds a connection it has not handed on."""
    conn = state.connection(cid)
    proc = state.process(conn.owner) if conn.fate is Fate.ACCEPTED else None
    if proc is None or not proc.can_run:
        return False
    if proc.is_master:
        return proc.shutdown is not Shutdown.NONE
    return proc.is_worker and not conn.requested


def close_idle_connection(config: Config, state: System, cid: int) -> tuple[System, ...]:
    """The worker closes a silent connection (a stopping passfd master, one it did not hand on):
    at once on a graceful stop (the reference server)
    or when its read timeout expires (nginx client_header_timeout, a blocking recv) — F3."""
    return (put_connection(state, replace(state.connection(cid), fate=Fate.CLOSED)),)


def can_begin_graceful_exit(config: Config, state: System, pid: int) -> bool:
    """A running worker that was told to quit and can act on it."""
    proc = state.process(pid)
    return (
        proc is not None
        and proc.is_worker
        and proc.quit_requested
        and proc.phase is Phase.RUNNING
        and not proc.stopped
    )


def begin_graceful_exit(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """The worker stops accepting and drops the mutex; requests in progress go on. It closes
    its listening descriptors (``close_listeners``) at once or when it exits (F2)."""
    proc = _process(state, pid)
    state = put_process(state, replace(proc, phase=Phase.EXITING, holds_mutex=False))
    return (replace(state, mutex=0) if state.mutex == pid else state,)


def can_close_listeners(config: Config, state: System, pid: int) -> bool:
    """A process that has stopped accepting still holds listening descriptors: a master told to
    shut down (F1) or a worker exiting gracefully (F2)."""
    proc = state.process(pid)
    if proc is None or not proc.fds or not proc.can_run:
        return False
    if proc.is_master:
        return proc.shutdown is not Shutdown.NONE
    return proc.is_worker and proc.phase is Phase.EXITING


def close_listeners(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """The process closes its listening descriptors; a socket closes with its last one (K1, K8)."""
    return (close_all_descriptors(state, pid),)


def can_exit_worker(config: Config, state: System, pid: int) -> bool:
    """A worker exits when it acts on TERM, when it notices its master's death (unless a graceful
    stop still asks it to finish its requests), or at the end of a graceful exit, once it owns
    nothing (``graceful_waits_for_requests``; the unsafe design exits with requests in hand)."""
    proc = state.live(pid, Role.WORKER)
    if proc is None:
        return False
    if proc.terminate_requested and not proc.stopped:
        return True
    if _notices_master_death(config, state, proc):
        return True
    if proc.phase is not Phase.EXITING or proc.stopped:
        return False
    return not state.owned(pid) or not config.graceful_waits_for_requests


def _notices_master_death(config: Config, state: System, proc: Process) -> bool:
    """An orphan that may leave now: untold, or its master was SIGKILLed. Under orphans-serve it
    may as well: that policy allows orphans to keep serving, it does not require it."""
    return state.is_orphan(proc) and (not proc.quit_requested or proc.master_killed)


def exit_worker(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """The worker exits. Connections in hand are reset; when nothing excuses it (no TERM, no
    death of the master) a requested one was *abandoned* by a graceful stop."""
    proc = _process(state, pid)
    excused = proc.terminate_requested or _notices_master_death(config, state, proc)
    if not excused:
        for conn in state.owned(pid):
            if conn.requested:
                state = put_connection(state, replace(conn, fate=Fate.ABANDONED))
    return (exit_process(state, pid),)


def can_spawn_helper(config: Config, state: System, pid: int) -> bool:
    """A commandable master, within the helper budget, starts a helper (a log shipper, a CGI)."""
    return can_command(state.process(pid)) and state.usage.helpers < config.bounds.helpers


def spawn_helper(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """The master forks a helper. A careful one closes the listening descriptors it inherited
    (FD_CLOEXEC before exec); a leaky one keeps them, and the socket outlives the server."""
    master = _process(state, pid)
    keep: frozenset[int] | None = frozenset() if config.helpers_close_listeners else None
    return (fork(_use(state, helpers=1), master, Role.HELPER, master.generation, -1, keep),)


def can_exit_helper(config: Config, state: System, pid: int) -> bool:
    """A live helper that can run finishes its job."""
    proc = state.live(pid, Role.HELPER)
    return proc is not None and proc.can_run


def exit_helper(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """The helper exits; its descriptors close."""
    return (exit_process(state, pid),)


def can_admit_deferred(config: Config, state: System, cid: int) -> bool:
    """A connection held back by TCP_DEFER_ACCEPT, and its listener's queue has room."""
    conn = state.connection(cid)
    return conn.fate is Fate.DEFERRED and has_room(state.listener(conn.listener))


def admit_deferred(config: Config, state: System, cid: int) -> tuple[System, ...]:
    """The kernel moves a held-back connection into the accept queue: the defer timeout passed,
    or the queue that was full when its first byte came has room again (K19)."""
    return (enqueue(state, state.connection(cid)),)


def can_reap(config: Config, state: System, pid: int) -> bool:
    """A zombie whose parent, a live master, can run its SIGCHLD handling."""
    proc = state.process(pid)
    if proc is None or proc.is_alive:
        return False
    parent = state.process(proc.parent)
    return parent is not None and parent.is_master and parent.can_run


def reap(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """waitpid(): the master removes the zombie, force-unlocks the mutex if the dead process's pid
    is in it (ngx_unlock_mutexes), and, without respawn, gives up the dead worker's slot."""
    proc = _process(state, pid)
    master = _process(state, proc.parent)
    state = remove_process(state, pid)
    if config.force_unlock and state.mutex == pid:
        state = replace(state, mutex=0)
    crashed = proc.is_worker and proc.generation == master.generation
    if crashed and not config.respawn and master.shutdown is Shutdown.NONE:
        state = put_process(state, replace(master, abandoned=master.abandoned | {proc.slot}))
    return (state,)


def can_exit_master(config: Config, state: System, pid: int) -> bool:
    """A master told to shut down, with no connection in hand, once every live worker of its
    has been told to stop: it may wait for them (nginx) or leave first (Node's primary, F8)."""
    proc = state.live(pid, Role.MASTER)
    return (
        proc is not None
        and proc.shutdown is not Shutdown.NONE
        and all(c.was_told_to_stop for c in state.children(pid) if c.is_worker and c.is_alive)
        and not state.owned(pid)
    )


def exit_master(config: Config, state: System, pid: int) -> tuple[System, ...]:
    """The master exits; its children (workers still finishing, a new binary) go to init."""
    return (exit_process(state, pid),)


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------

_E, _I = Kind.ENVIRONMENT, Kind.INTERNAL
_W, _M, _C = Param.WORKER, Param.MASTER, Param.CONNECTION


ACTIONS: dict[str, Action] = {
    action.name: action
    for action in (
        Action("start_master", _E, (), can_start_master, start_master, "start the server"),
        Action("connect", _E, (), can_connect, connect, "a client connects"),
        Action(
            "send_request", _E, (_C,), can_send_request, send_request, "a client sends its request"
        ),
        Action(
            "close_connection",
            _E,
            (_C,),
            can_close_connection,
            close_connection,
            "a client closes without a request",
        ),
        Action("kill_worker", _E, (_W,), can_kill_worker, kill_worker, "SIGKILL a worker"),
        Action("stop_worker", _E, (_W,), can_stop_worker, stop_worker, "SIGSTOP a worker"),
        Action(
            "continue_worker", _E, (_W,), can_continue_worker, continue_worker, "SIGCONT a worker"
        ),
        Action("reload", _E, (_M,), can_reload, reload, "HUP: reload"),
        Action(
            "graceful_shutdown",
            _E,
            (_M,),
            can_graceful_shutdown,
            graceful_shutdown,
            "QUIT: graceful stop",
        ),
        Action("fast_shutdown", _E, (_M,), can_fast_shutdown, fast_shutdown, "TERM: fast stop"),
        Action("upgrade", _E, (_M,), can_upgrade, upgrade, "USR2: binary upgrade"),
        Action("kill_master", _E, (_M,), can_kill_master, kill_master, "SIGKILL the master"),
        Action(
            "spawn_worker",
            _I,
            (_M, Param.SLOT),
            can_spawn_worker,
            spawn_worker,
            "fork a worker into a slot",
        ),
        Action(
            "retire_generation",
            _I,
            (_M,),
            can_retire_generation,
            retire_generation,
            "QUIT the old generation",
        ),
        Action(
            "rebind_listeners",
            _I,
            (_M,),
            can_rebind_listeners,
            rebind_listeners,
            "bind new sockets (rebind design)",
        ),
        Action(
            "accept",
            _I,
            (Param.PROCESS, Param.LISTENER),
            can_accept,
            accept,
            "accept() a queued connection",
        ),
        Action(
            "acquire_mutex", _I, (_W,), can_acquire_mutex, acquire_mutex, "take the accept mutex"
        ),
        Action(
            "release_mutex", _I, (_W,), can_release_mutex, release_mutex, "release the accept mutex"
        ),
        Action(
            "pass_connection",
            _I,
            (_C, _W),
            can_pass_connection,
            pass_connection,
            "hand a connection to a worker",
        ),
        Action(
            "serve_request", _I, (_C,), can_serve_request, serve_request, "respond to a request"
        ),
        Action(
            "close_idle_connection",
            _I,
            (_C,),
            can_close_idle_connection,
            close_idle_connection,
            "a worker closes a connection whose request never came",
        ),
        Action(
            "receive_listeners",
            _I,
            (_W,),
            can_receive_listeners,
            receive_listeners,
            "a worker is sent the listener over SCM_RIGHTS",
        ),
        Action(
            "admit_deferred",
            _I,
            (_C,),
            can_admit_deferred,
            admit_deferred,
            "a held-back connection enters the accept queue",
        ),
        Action(
            "close_listeners",
            _I,
            (Param.PROCESS,),
            can_close_listeners,
            close_listeners,
            "a stopping process closes its listening descriptors",
        ),
        Action(
            "spawn_helper",
            _I,
            (_M,),
            can_spawn_helper,
            spawn_helper,
            "the master starts a helper process",
        ),
        Action("exit_helper", _I, (Param.PROCESS,), can_exit_helper, exit_helper, "a helper exits"),
        Action(
            "begin_graceful_exit",
            _I,
            (_W,),
            can_begin_graceful_exit,
            begin_graceful_exit,
            "a worker acts on QUIT",
        ),
        Action("exit_worker", _I, (_W,), can_exit_worker, exit_worker, "a worker exits"),
        Action("reap", _I, (Param.PROCESS,), can_reap, reap, "the master reaps a dead child"),
        Action(
            "exit_master",
            _I,
            (_M,),
            can_exit_master,
            exit_master,
            "the master exits after a shutdown",
        ),
        Action(
            "kill_stragglers",
            _I,
            (_M,),
            can_kill_stragglers,
            kill_stragglers,
            "SIGKILL the workers a fast stop left",
        ),
    )
}
"""Every action of the model, by name: the single list the explorer, proofs, verifier and docs use."""
