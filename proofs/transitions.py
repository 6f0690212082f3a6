"""One two-state formula per entry of the model's action table, keyed by the same name.

A builder reads a :class:`~forkshare.model.config.Config` (as the Python guard and effect do),
the pre-state vocabulary, the action's arguments (z3 constants of the sorts of its ``Param``s)
and a :class:`~forkshare.proofs.encoding.Locals` for the step's fresh elements and choices. It
returns an :class:`Effect`: the guard and, per modified symbol, its new value as a function of the
symbol's arguments. :func:`transition` turns that into ``guard ∧ ∀x. R'(x) = new(x)`` for the
modified symbols only; the others are shared between the pre- and the post-state (mypyvy's
``modifies``), so no frame axiom is needed and the set of modified symbols cannot drift from the
updates.

Discussion:
    *Budgets are gone.* Every ``state.usage < config.bounds`` guard is dropped: the proofs are
    about every number of steps. A failed start (EADDRINUSE) is a stutter step, because it
    changes only the usage counters.

    *The model's nondeterminism is a free local.* Where a Python effect returns several
    successors (the reuseport hash, a connection held back by TCP_DEFER_ACCEPT or not, a
    worker forked with or without the listener), the formula has a fresh constant the solver
    may choose; a configuration that pins the freedom (``defer_accept``,
    ``workers_receive_listeners``) replaces it with the pinned value, exactly as the Python
    effect then returns one successor.

    *Effects that the Python model performs one after another are composed by hand.* Closing a
    process's descriptors one by one (``kernel.close_all_descriptors``) closes exactly the sockets
    that it, or the other processes exiting in the same step, held and nobody else holds; fast
    shutdown's exits of every worker child end the same way whatever their order. Each builder
    names whose server a closed queue belonged to (``kernel.serves_running_service``).

    *Three over-approximations, all sound for safety.* (1) A worker with ``worker_connections``
    K > 1 may or may not have room (counting is not first-order); K = 1 is exact. (2) In
    reuseport mode a master creates one socket per slot: with unboundedly many slots this is the
    ∀slot ∃socket of :func:`_new_sockets`; requiring also "every new socket has a slot" would add
    the reverse edge and leave the decidable fragment, so the formula also allows extra new
    sockets without a slot. No invariant depends on them; the link test never perturbs a state
    by inventing a socket, and bounded model checking excludes them (every state it decodes must
    give every reuseport socket a slot). (3) In poll mode, that an arrival woke several workers
    is implied only one way (see :func:`_herd`); no invariant claimed in poll mode reads it.

    *The head of a queue is the connection nobody is ahead of.* accept() takes the oldest
    connection of the queue (E1); ``ahead`` records the order of admission (see
    :mod:`forkshare.proofs.encoding`). That a head exists is a side condition of the step, not
    a lemma: in every reachable state ``ahead`` is the order of a finite tuple (the link test
    pins it from the Python queue), and no invariant reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from forkshare.model.actions import ACTIONS
from forkshare.model.config import Config, Mode
from forkshare.model.state import Fate, Phase, Role, Shutdown
from forkshare.model.table import Param
from forkshare.proofs import predicates as q
from forkshare.proofs.encoding import (
    FALSE,
    STATIC,
    SYMBOLS,
    TRUE,
    Formula,
    Locals,
    Term,
    Vocab,
    boolean,
    conj,
    disj,
    exists,
    fate,
    forall,
    implies,
    is_successor,
    ite,
    neg,
    phase,
    shutdown,
    var,
)

Update = Callable[..., Term]
"""The new value of a symbol at the given arguments, over the pre-state and the step's locals."""


@dataclass(slots=True)
class Effect:
    """An action's guard and the new value of each symbol it modifies."""

    guard: Formula
    updates: dict[str, Update] = field(default_factory=dict)


Builder = Callable[[Config, Vocab, tuple[Term, ...], Locals], Effect]

PARAM_SORTS = {
    Param.PROCESS: "proc",
    Param.WORKER: "proc",
    Param.MASTER: "proc",
    Param.SLOT: "slot",
    Param.LISTENER: "sock",
    Param.CONNECTION: "conn",
}
"""The sort of each kind of action argument."""


def arguments(name: str, local: Locals) -> tuple[Term, ...]:
    """Fresh constants for the arguments of action ``name``, in the table's order."""
    params = ACTIONS[name].params
    return tuple(local.const(PARAM_SORTS[p], f"arg{k}_{p.value}") for k, p in enumerate(params))


def effect(config: Config, name: str, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """The effect of action ``name`` under ``config`` from ``pre`` with ``args``."""
    return TRANSITIONS[name](config, pre, args, local)


def transition(step: Effect, pre: Vocab, post: Vocab, local: Locals) -> Formula:
    """``guard ∧ side conditions ∧ ∀x. R'(x) = new(x)`` for each modified symbol ``R``."""
    parts = [step.guard, *local.side]
    for name, update in step.updates.items():
        symbol = SYMBOLS[name]
        xs = [var(s, f"u_{name}_{k}") for k, s in enumerate(symbol.domain)]
        body = post.decl(name)(*xs) == update(*xs)
        parts.append(forall(xs, body) if xs else body)
    return conj(*parts)


def frame(pre: Vocab, post: Vocab, names: frozenset[str]) -> Formula:
    """``∀x. R'(x) = R(x)`` for each symbol in ``names`` (only for checks over full copies)."""
    parts = []
    for name in sorted(names):
        symbol = SYMBOLS[name]
        xs = [var(s, f"f_{name}_{k}") for k, s in enumerate(symbol.domain)]
        body = post.decl(name)(*xs) == pre.decl(name)(*xs)
        parts.append(forall(xs, body) if xs else body)
    return conj(*parts)


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


def _point(pre_fn: Callable[..., Term], at: Term, value: Term) -> Update:
    """Unary update: ``value`` at ``at``, unchanged elsewhere."""
    return lambda x: ite(x == at, value, pre_fn(x))


def _row(pre_fn: Callable[..., Term], at: Term, row: Callable[[Term], Term]) -> Update:
    """Binary update: ``row(y)`` for the pairs ``(at, y)``, unchanged elsewhere."""
    return lambda x, y: ite(x == at, row(y), pre_fn(x, y))


def _guarded(ok: Formula, pre: Vocab, updates: dict[str, Update]) -> dict[str, Update]:
    """The updates when ``ok`` holds; otherwise every symbol keeps its value (a stutter)."""
    return {name: _when(ok, update, pre.decl(name)) for name, update in updates.items()}


def _when(ok: Formula, update: Update, old: Callable[..., Term]) -> Update:
    return lambda *xs: ite(ok, update(*xs), old(*xs))


def _either(local: Locals, name: str, pinned: bool | None) -> Formula:
    """A free choice of the step (``None``: either way), or the value a configuration pins."""
    return local.const("bool", name) if pinned is None else boolean(pinned)


@dataclass(frozen=True, slots=True)
class NewProcess:
    """A forked (or started) process: who it is and what it starts with."""

    pid: Term
    role: Role
    parent: Term | None
    generation: Term
    slot: Term | None
    fds: Callable[[Term], Formula]
    phase: Term = field(default_factory=lambda: phase(Phase.RUNNING))


def _create_process(pre: Vocab, new: NewProcess) -> dict[str, Update]:
    """Updates defining every attribute of a new process (``kernel.fork``, ``start_master``)."""
    n = new.pid
    parent_of = (lambda p: p == new.parent) if new.parent is not None else (lambda p: FALSE)
    slot_of = (lambda i: i == new.slot) if new.slot is not None else (lambda i: FALSE)
    return {
        "p_in": lambda x: disj(x == n, pre.p_in(x)),
        "master": _point(pre.master, n, boolean(new.role is Role.MASTER)),
        "helper": _point(pre.helper, n, boolean(new.role is Role.HELPER)),
        "parent": _row(pre.parent, n, parent_of),
        "gen": _point(pre.gen, n, new.generation),
        "wslot": _row(pre.wslot, n, slot_of),
        "phase": _point(pre.phase, n, new.phase),
        "stopped": _point(pre.stopped, n, FALSE),
        "holds": _row(pre.holds, n, new.fds),
        "holds_mutex": _point(pre.holds_mutex, n, FALSE),
        "quit": _point(pre.quit, n, FALSE),
        "terminate": _point(pre.terminate, n, FALSE),
        "orphan_accepted": _point(pre.orphan_accepted, n, FALSE),
        "master_killed": _point(pre.master_killed, n, FALSE),
        "shutdown": _point(pre.shutdown, n, shutdown(Shutdown.NONE)),
        "abandoned": _row(pre.abandoned, n, lambda i: FALSE),
    }


@dataclass(frozen=True, slots=True)
class NewSockets:
    """Sockets opened in one step: which elements, their slot, who created them."""

    is_new: Callable[[Term], Formula]
    slot: Callable[[Term, Term], Formula]
    reuseport: bool
    by_master: bool


def _new_sockets(
    config: Config, pre: Vocab, local: Locals, *, by_master: bool, when: Formula = TRUE
) -> NewSockets:
    """A master's sockets: one shared socket, or one reuseport socket per slot (see Discussion).
    The fresh elements are required only ``when`` the sockets are made (a failed start makes
    none, and must not need a spare element)."""
    if config.mode is not Mode.REUSEPORT:
        s0 = local.const("sock", "new_sock")
        local.require(implies(when, neg(pre.s_in(s0))))
        return NewSockets(lambda s: s == s0, lambda s, i: FALSE, False, by_master)
    is_new = local.relation("new_sock", "sock")
    slot = local.relation("new_sock_slot", "sock", "slot")
    s, s2, i, j = (
        var("sock", "ns_s"),
        var("sock", "ns_s2"),
        var("slot", "ns_i"),
        var("slot", "ns_j"),
    )
    local.require(
        forall([s], implies(is_new(s), neg(pre.s_in(s)))),
        implies(when, forall([i], exists([s], conj(is_new(s), slot(s, i))))),
        forall([s, i], implies(slot(s, i), is_new(s))),
        forall([s, i, j], implies(conj(slot(s, i), slot(s, j)), i == j)),
        forall([s, s2, i], implies(conj(slot(s, i), slot(s2, i)), s == s2)),
    )
    return NewSockets(is_new, slot, True, by_master)


def _create_sockets(pre: Vocab, new: NewSockets) -> dict[str, Update]:
    """Updates defining every attribute of the new sockets (``kernel.open_listener``)."""
    fresh = new.is_new
    return {
        "s_in": lambda s: disj(fresh(s), pre.s_in(s)),
        "reuseport": lambda s: ite(fresh(s), boolean(new.reuseport), pre.reuseport(s)),
        "sslot": lambda s, i: ite(fresh(s), new.slot(s, i), pre.sslot(s, i)),
        "s_by_master": lambda s: ite(fresh(s), boolean(new.by_master), pre.s_by_master(s)),
        "listening": lambda s: disj(fresh(s), pre.listening(s)),
        "closed_early": lambda s: conj(neg(fresh(s)), pre.closed_early(s)),
        "in_queue": lambda c, s: conj(neg(fresh(s)), pre.in_queue(c, s)),
    }


def _enqueue(pre: Vocab, c: Term, s: Term, when: Formula) -> dict[str, Update]:
    """``kernel.enqueue``: ``c`` joins the tail of ``s``'s queue (``when`` it does); it is no
    longer held back."""
    return {
        "fate": _point(pre.fate, c, ite(when, q.QUEUED, pre.fate(c))),
        "held_back": _point(pre.held_back, c, conj(neg(when), pre.held_back(c))),
        "in_queue": lambda x, y: disj(pre.in_queue(x, y), conj(when, x == c, y == s)),
        "ahead": lambda x, y: disj(pre.ahead(x, y), conj(when, y == c, pre.in_queue(x, s))),
    }


@dataclass(frozen=True, slots=True)
class Closing:
    """The descriptors closed in one step and what becomes of the sockets and their queues."""

    closes: Callable[[Term], Formula]
    """The socket's last descriptor is among those closed (``close_listener`` runs)."""
    lost: Callable[[Term], Formula]
    """The connection was queued on, or held back by, a socket that closes (K8, K19)."""
    lost_fate: Term
    """ABORTED while the service is meant to run, DISCARDED during a shutdown."""
    updates: dict[str, Update]


def _close(
    pre: Vocab, local: Locals, closer: Callable[[Term], Formula], running: Formula
) -> Closing:
    """``closer``'s processes close every descriptor; ``running`` is
    ``kernel.serves_running_service`` of the process whose close is the last one (the loss is
    its server's)."""
    running_now = local.let("running_mid", running)

    def closes(s: Term) -> Formula:
        p, p2 = var("proc", "cl_p"), var("proc", "cl_p2")
        mine = exists([p], conj(closer(p), q.holder(pre, p, s)))
        others = forall([p2], implies(q.holder(pre, p2, s), closer(p2)))
        return conj(mine, others)

    def dequeued(c: Term) -> Formula:
        s = var("sock", "deq_s")
        return exists([s], conj(pre.in_queue(c, s), closes(s)))

    def lost(c: Term) -> Formula:
        s = var("sock", "lost_s")
        waiting = disj(pre.in_queue(c, s), q.waits_for_admission(pre, c, s))
        return exists([s], conj(waiting, closes(s)))

    updates: dict[str, Update] = {
        "holds": lambda x, s: conj(pre.holds(x, s), neg(closer(x))),
        "listening": lambda s: conj(pre.listening(s), neg(closes(s))),
        "closed_early": lambda s: ite(
            closes(s), conj(pre.s_by_master(s), running_now), pre.closed_early(s)
        ),
        "in_queue": lambda c, s: conj(pre.in_queue(c, s), neg(closes(s))),
        "ahead": lambda x, y: conj(pre.ahead(x, y), neg(dequeued(x))),
    }
    lost_fate = ite(running_now, fate(Fate.ABORTED), fate(Fate.DISCARDED))
    return Closing(closes, lost, lost_fate, updates)


FateRule = tuple[Callable[[Term], Formula], Callable[[Term], Term]]
"""A condition on a connection and the fate it then gets."""


def _fates(pre: Vocab, *rules: FateRule) -> Update:
    """``fate'``: the first rule whose condition holds gives the new fate; else unchanged."""

    def update(c: Term) -> Term:
        value = pre.fate(c)
        for condition, new in reversed(rules):
            value = ite(condition(c), new(c), value)
        return value

    return update


def _to(value: Term) -> Callable[[Term], Term]:
    """The same fate for every connection a rule applies to."""
    return lambda c: value


def _closes_own(pre: Vocab, local: Locals, p: Term) -> dict[str, Update]:
    """``kernel.close_all_descriptors(p)`` as its own step: the sockets ``p`` was the last to
    hold close and their queues are lost (the loss is ``p``'s server's)."""
    running = ite(pre.master(p), FALSE, q.parent_serves(pre, p))
    closing = _close(pre, local, lambda x: x == p, running)
    return {**closing.updates, "fate": _fates(pre, (closing.lost, _to(closing.lost_fate)))}


def _exit_one(
    config: Config,
    pre: Vocab,
    local: Locals,
    p: Term,
    in_flight: Callable[[Term], Term] = lambda c: fate(Fate.RESET),
) -> dict[str, Update]:
    """``kernel.exit_process(p)``: its descriptors close (the loss is its server's: a master's
    own is over, another process's is its parent's), the connections it owns end with
    ``in_flight`` (RESET unless a graceful exit abandons them), its zombie children are reaped
    by init, its live ones reparented, and it is reaped at once when its parent is gone; a pid
    init reaps leaves the lock word free."""
    running = ite(pre.master(p), FALSE, q.parent_serves(pre, p))
    closing = _close(pre, local, lambda x: x == p, running)
    parent_gone = local.let("parent_gone", neg(_parent_in_table(pre, p)))

    def zombie_child(x: Term) -> Formula:
        return conj(pre.p_in(x), pre.parent(x, p), pre.phase(x) == q.DEAD)

    def reaped(x: Term) -> Formula:
        return disj(conj(x == p, parent_gone), zombie_child(x))

    def owned(c: Term) -> Formula:
        return q.owned(pre, c, p)

    holder = pre.holder()
    return {
        **closing.updates,
        "phase": _point(pre.phase, p, q.DEAD),
        "holds_mutex": lambda x: conj(pre.holds_mutex(x), x != p),
        "stopped": lambda x: conj(pre.stopped(x), x != p),
        "fate": _fates(pre, (closing.lost, _to(closing.lost_fate)), (owned, in_flight)),
        "parent": lambda x, y: conj(pre.parent(x, y), y != p),
        "p_in": lambda x: conj(pre.p_in(x), neg(reaped(x))),
        "locked": lambda: conj(pre.locked(), neg(reaped(holder))),
    }


def _parent_in_table(pre: Vocab, p: Term) -> Formula:
    """``state.process(proc.parent) is not None``."""
    y = var("proc", "ex_q")
    return exists([y], conj(pre.parent(p, y), pre.p_in(y)))


def _request_quit(pre: Vocab, m: Term) -> Update:
    """``actions._request_quit``: every live worker child of ``m`` is told to quit."""
    return lambda x: disj(pre.quit(x), q.worker_child(pre, x, m))


def _next_generation(local: Locals, current: Term) -> Term:
    nxt = local.const("gen", "next_gen")
    local.require(is_successor(current, nxt))
    return nxt


# ---------------------------------------------------------------------------------------------
# Environment actions
# ---------------------------------------------------------------------------------------------


def start_master(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.start_master``: a master starts and opens its sockets, or EADDRINUSE (stutter)."""
    m = var("proc", "sm_m")
    guard = forall([m], neg(q.live_master(pre, m)))
    reuseport = config.mode is Mode.REUSEPORT
    ok = local.let(
        "bind_ok",
        neg(q.bind_conflicts(pre, reuseport)) if config.master_holds_listeners else TRUE,
    )
    n = local.const("proc", "new_master")
    local.require(implies(ok, q.is_fresh_process(pre, n)))
    gen1 = STATIC.gen_first()
    if not config.master_holds_listeners:
        new = NewProcess(n, Role.MASTER, None, gen1, None, lambda s: FALSE)
        return Effect(guard, _guarded(ok, pre, {**_create_process(pre, new), **_fresh_zone()}))
    sockets = _new_sockets(config, pre, local, by_master=True, when=ok)
    new = NewProcess(n, Role.MASTER, None, gen1, None, sockets.is_new)
    updates = {**_create_sockets(pre, sockets), **_create_process(pre, new), **_fresh_zone()}
    return Effect(guard, _guarded(ok, pre, updates))


def _fresh_zone() -> dict[str, Update]:
    """A new master allocates a fresh shared zone: its accept mutex starts free."""
    return {"locked": lambda: FALSE}


def connect(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.connect``: refused, or queued on (held back by, or dropped by) one listening
    socket; whether a connection is held back is free unless ``defer_accept`` pins it (K19)."""
    n = local.const("conn", "new_conn")
    c = var("conn", "cn_c")
    local.require(neg(pre.c_in(n)), forall([c], implies(pre.c_in(c), STATIC.conn_lt(c, n))))
    s = var("sock", "cn_s")
    target = local.const("sock", "target")
    refused = local.let("refused", forall([s], neg(conj(pre.s_in(s), pre.listening(s)))))
    local.require(implies(neg(refused), conj(pre.s_in(target), pre.listening(target))))
    full = local.let("full", q.queue_full(config, pre, target))
    deferred = _either(local, "deferred", config.defer_accept)
    arrives = conj(neg(refused), neg(full))
    queued = conj(arrives, neg(deferred))
    arrival = ite(
        refused,
        fate(Fate.REFUSED),
        ite(full, fate(Fate.DROPPED), ite(deferred, q.DEFERRED, q.QUEUED)),
    )
    fresh = {
        name: _point(pre.decl(name), n, FALSE)
        for name in ("accepted_once", "accepted_twice", "c_by_master", "requested", "woke_many")
    }
    return Effect(
        TRUE,
        {
            "held_back": _point(pre.held_back, n, conj(arrives, deferred)),
            "c_in": lambda x: disj(x == n, pre.c_in(x)),
            "fate": _point(pre.fate, n, arrival),
            "in_queue": _row(pre.in_queue, n, lambda y: conj(queued, y == target)),
            "ahead": lambda x, y: ite(
                y == n,
                conj(queued, x != n, pre.in_queue(x, target)),
                conj(x != n, pre.ahead(x, y)),
            ),
            "arrived_on": _row(pre.arrived_on, n, lambda y: conj(arrives, y == target)),
            "owns": _row(pre.owns, n, lambda y: FALSE),
            **fresh,
        },
    )


def send_request(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.send_request``: a held-back connection enters its queue with its first byte,
    if there is room (K19); a client whose held-back connection was dropped silently sends too
    (it still believes it is connected)."""
    (c,) = args
    waiting = disj(pre.fate(c) == q.DEFERRED, pre.fate(c) == q.QUEUED, pre.fate(c) == q.ACCEPTED)
    connected = disj(waiting, q.silently_dropped(pre, c))
    guard = conj(pre.c_in(c), connected, neg(pre.requested(c)))
    home = local.const("sock", "home")
    held = pre.fate(c) == q.DEFERRED
    local.require(implies(held, pre.arrived_on(c, home)))
    admitted = local.let("admitted", conj(held, neg(q.queue_full(config, pre, home))))
    return Effect(
        guard,
        {"requested": _point(pre.requested, c, TRUE), **_enqueue(pre, c, home, admitted)},
    )


def close_connection(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.close_connection``."""
    (c,) = args
    guard = conj(pre.c_in(c), pre.fate(c) == q.ACCEPTED, neg(pre.requested(c)))
    return Effect(guard, {"fate": _point(pre.fate, c, fate(Fate.CLOSED))})


def kill_worker(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.kill_worker``: SIGKILL."""
    (p,) = args
    guard = conj(q.alive(pre, p), q.worker(pre, p))
    return Effect(guard, _exit_one(config, pre, local, p))


def stop_worker(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.stop_worker``: SIGSTOP."""
    (p,) = args
    guard = conj(q.alive(pre, p), q.worker(pre, p), neg(pre.stopped(p)))
    return Effect(guard, {"stopped": _point(pre.stopped, p, TRUE)})


def continue_worker(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.continue_worker``: SIGCONT."""
    (p,) = args
    return Effect(conj(pre.p_in(p), pre.stopped(p)), {"stopped": _point(pre.stopped, p, FALSE)})


def reload(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.reload``: HUP; the rebind design also closes the sockets and QUITs the workers."""
    (m,) = args
    guard = q.commandable(pre, m)
    if config.reload_rebinds:
        guard = conj(guard, q.holds_any(pre, m))
    updates: dict[str, Update] = {
        "gen": _point(pre.gen, m, _next_generation(local, pre.gen(m))),
        "abandoned": _row(pre.abandoned, m, lambda i: FALSE),
    }
    if config.reload_rebinds:
        closing = _close(pre, local, lambda x: x == m, TRUE)
        updates |= closing.updates
        updates["fate"] = _fates(pre, (closing.lost, _to(closing.lost_fate)))
        updates["quit"] = _request_quit(pre, m)
    return Effect(guard, updates)


def graceful_shutdown(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.graceful_shutdown``: QUIT to the master; it keeps its descriptors (F1) and the
    connections it holds (a passfd master hands them on or closes them before it exits)."""
    (m,) = args
    return Effect(
        q.commandable(pre, m),
        {
            "shutdown": _point(pre.shutdown, m, shutdown(Shutdown.GRACEFUL)),
            "shut_down_once": lambda: TRUE,
            "quit": _request_quit(pre, m),
        },
    )


def fast_shutdown(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.fast_shutdown``: TERM; the master keeps its descriptors (F1), its running
    workers exit at once, its stopped ones keep the TERM pending (``kill_stragglers`` ends them
    unless they are continued first)."""
    (m,) = args
    guard = conj(q.live_master(pre, m), pre.shutdown(m) != shutdown(Shutdown.FAST))

    def dying(x: Term) -> Formula:
        return conj(q.worker_child(pre, x, m), neg(pre.stopped(x)))

    def pending(x: Term) -> Formula:
        return conj(q.worker_child(pre, x, m), pre.stopped(x))

    updates = _workers_exit(pre, local, dying, also_reset=m)
    return Effect(
        guard,
        {
            **updates,
            "shutdown": _point(pre.shutdown, m, shutdown(Shutdown.FAST)),
            "shut_down_once": lambda: TRUE,
            "terminate": lambda x: disj(pre.terminate(x), pending(x)),
        },
    )


def kill_stragglers(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.kill_stragglers``: SIGKILL every worker a fast stop left (stopped ones too),
    or, at a graceful stop's timeout, every stopped worker (it could not finish)."""
    (m,) = args
    x = var("proc", "ks_x")
    fast = local.let("fast", pre.shutdown(m) == shutdown(Shutdown.FAST))
    graceful = local.let("graceful", pre.shutdown(m) == shutdown(Shutdown.GRACEFUL))

    def straggler(w: Term) -> Formula:
        return conj(q.worker_child(pre, w, m), disj(fast, conj(graceful, pre.stopped(w))))

    guard = conj(q.live_master(pre, m), exists([x], straggler(x)))
    return Effect(guard, _workers_exit(pre, local, straggler))


def _workers_exit(
    pre: Vocab,
    local: Locals,
    dying: Callable[[Term], Formula],
    *,
    also_reset: Term | None = None,
) -> dict[str, Update]:
    """Workers of a master stopping fast exit together (``exit_process`` for each): their master
    is in the table, so none is reaped by init, and no closer serves a running server (the
    queues are discarded). ``also_reset``'s connections in flight are reset too."""
    closing = _close(pre, local, dying, FALSE)

    def reset(c: Term) -> Formula:
        y = var("proc", "fs_y")
        theirs = exists([y], conj(q.owned(pre, c, y), dying(y)))
        return theirs if also_reset is None else disj(q.owned(pre, c, also_reset), theirs)

    return {
        **closing.updates,
        "fate": _fates(pre, (closing.lost, _to(closing.lost_fate)), (reset, _to(fate(Fate.RESET)))),
        "phase": lambda x: ite(dying(x), q.DEAD, pre.phase(x)),
        "holds_mutex": lambda x: conj(pre.holds_mutex(x), neg(dying(x))),
        "stopped": lambda x: conj(pre.stopped(x), neg(dying(x))),
        "parent": lambda x, y: conj(pre.parent(x, y), neg(dying(y))),
    }


def upgrade(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.upgrade``: USR2; a new master inherits the sockets, or exits at once without."""
    (m,) = args
    c, y = var("proc", "up_c"), var("proc", "up_y")
    pending = exists([c], conj(pre.parent(c, m), q.live_master(pre, c)))
    is_new_binary = exists([y], conj(pre.parent(m, y), q.live_master(pre, y)))
    guard = conj(q.commandable(pre, m), neg(pending), neg(is_new_binary))
    n = local.const("proc", "new_binary")
    local.require(q.is_fresh_process(pre, n))
    inherits = local.let("inherits", q.holds_any(pre, m))
    start = ite(inherits, q.RUNNING, q.DEAD)
    generation = _next_generation(local, pre.gen(m))
    new = NewProcess(n, Role.MASTER, m, generation, None, lambda s: pre.holds(m, s), start)
    return Effect(guard, _create_process(pre, new))


def kill_master(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.kill_master``: SIGKILL; the children are reparented to init and remember how
    their master died."""
    (m,) = args
    updates = _exit_one(config, pre, local, m)
    updates["master_killed"] = lambda x: disj(
        pre.master_killed(x), conj(q.alive(pre, x), pre.parent(x, m))
    )
    return Effect(q.live_master(pre, m), updates)


# ---------------------------------------------------------------------------------------------
# Internal actions
# ---------------------------------------------------------------------------------------------


def spawn_worker(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.spawn_worker``: fork into a slot, with the master's sockets or (shared modes,
    F5) without them; private reuseport binds after fork."""
    m, i = args
    guard = conj(q.commandable(pre, m), neg(pre.abandoned(m, i)), neg(q.slot_is_filled(pre, m, i)))
    if config.master_holds_listeners:
        guard = conj(guard, q.holds_any(pre, m))
    n = local.const("proc", "new_worker")
    local.require(q.is_fresh_process(pre, n))
    kept = _kept(config, pre, local, i)
    if config.master_holds_listeners:
        new = NewProcess(n, Role.WORKER, m, pre.gen(m), i, lambda s: conj(pre.holds(m, s), kept(s)))
        return Effect(guard, _create_process(pre, new))
    return Effect(guard, _spawn_private(config, pre, local, m, i, n, kept))


def _kept(config: Config, pre: Vocab, local: Locals, i: Term) -> Callable[[Term], Formula]:
    """``actions._kept`` and the SCM_RIGHTS choice: the inherited sockets a new worker keeps —
    none in passfd mode, only its slot's clone in reuseport mode when workers close the others,
    none when a shared-mode worker is to be sent them later (F5), all of them otherwise."""
    if config.mode is Mode.PASSFD:
        return lambda s: FALSE
    if config.mode is Mode.REUSEPORT and not config.workers_keep_all_clones:
        return lambda s: pre.sslot(s, i)
    if config.is_shared and config.workers_receive_listeners is not False:
        bare = _either(local, "without_fds", config.workers_receive_listeners)
        return lambda s: neg(bare)
    return lambda s: TRUE


def _spawn_private(
    config: Config,
    pre: Vocab,
    local: Locals,
    m: Term,
    i: Term,
    n: Term,
    kept: Callable[[Term], Formula],
) -> dict[str, Update]:
    # The forked worker binds its own reuseport socket; if a non-reuseport socket listens on the
    # port, bind fails and the worker exits at once (a zombie of its master). Its inherited
    # descriptors are the master's, which the master still holds, so closing them closes nothing.
    ok = local.let("bind_ok", neg(q.bind_conflicts(pre, reuseport=True)))
    s0 = local.const("sock", "own_sock")
    local.require(implies(ok, neg(pre.s_in(s0))))
    sockets = NewSockets(lambda s: conj(ok, s == s0), lambda s, j: j == i, True, False)

    def fds(s: Term) -> Formula:
        return conj(ok, disj(s == s0, conj(pre.holds(m, s), kept(s))))

    start = ite(ok, q.RUNNING, q.DEAD)
    new = NewProcess(n, Role.WORKER, m, pre.gen(m), i, fds, start)
    return {**_create_sockets(pre, sockets), **_create_process(pre, new)}


def receive_listeners(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.receive_listeners``: shared modes; a running worker without descriptors, not
    told to stop, is sent its commandable master's (SCM_RIGHTS, F5, K16)."""
    (p,) = args
    if not config.is_shared:
        return Effect(FALSE)
    m = local.const("proc", "sender")
    guard = conj(
        q.alive(pre, p),
        q.worker(pre, p),
        neg(q.holds_any(pre, p)),
        pre.phase(p) == q.RUNNING,
        neg(pre.stopped(p)),
        neg(q.told_to_stop(pre, p)),
        pre.parent(p, m),
        q.commandable(pre, m),
        q.holds_any(pre, m),
    )
    return Effect(guard, {"holds": _row(pre.holds, p, lambda s: pre.holds(m, s))})


def retire_generation(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.retire_generation``: QUIT the older workers, before or after the new
    generation is forked (F4, K20)."""
    (m,) = args
    x = var("proc", "rg_x")

    def old(w: Term) -> Formula:
        return conj(
            q.worker_child(pre, w, m),
            STATIC.gen_lt(pre.gen(w), pre.gen(m)),
            neg(pre.quit(w)),
        )

    guard = conj(q.commandable(pre, m), exists([x], old(x)))
    return Effect(guard, {"quit": lambda w: disj(pre.quit(w), old(w))})


def rebind_listeners(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.rebind_listeners``: the rebind design binds fresh sockets after a reload."""
    (m,) = args
    if not config.reload_rebinds:
        return Effect(FALSE)
    reuseport = config.mode is Mode.REUSEPORT
    guard = conj(
        q.commandable(pre, m), neg(q.holds_any(pre, m)), neg(q.bind_conflicts(pre, reuseport))
    )
    sockets = _new_sockets(config, pre, local, by_master=True)
    updates = _create_sockets(pre, sockets)
    updates["holds"] = _row(pre.holds, m, sockets.is_new)
    return Effect(guard, updates)


def accept(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.accept``: the head of the queue; poll mode wakes every waiter; the accept of an
    orphan that was not told to stop is counted."""
    p, s = args
    head = local.const("conn", "head")
    d = var("conn", "ac_d")
    local.require(
        pre.in_queue(head, s),
        forall([d], implies(pre.in_queue(d, s), neg(pre.ahead(d, head)))),
    )
    queued = exists([d], pre.in_queue(d, s))
    guard = conj(pre.s_in(s), queued, q.is_waiting_on(config, pre, p, s))
    woke_many = _herd(config, pre, local, p, s)
    orphan = local.let("orphan", conj(q.orphan(pre, p), neg(pre.quit(p))))
    return Effect(
        guard,
        {
            "in_queue": lambda c, t: conj(pre.in_queue(c, t), neg(conj(c == head, t == s))),
            "ahead": lambda x, y: conj(pre.ahead(x, y), x != head),
            "fate": _point(pre.fate, head, q.ACCEPTED),
            "owns": _row(pre.owns, head, lambda y: y == p),
            "accepted_once": _point(pre.accepted_once, head, TRUE),
            "accepted_twice": _point(pre.accepted_twice, head, pre.accepted_once(head)),
            "c_by_master": _point(pre.c_by_master, head, pre.master(p)),
            "woke_many": _point(pre.woke_many, head, woke_many),
            "orphan_accepted": _point(pre.orphan_accepted, p, disj(pre.orphan_accepted(p), orphan)),
        },
    )


def _herd(config: Config, pre: Vocab, local: Locals, p: Term, s: Term) -> Formula:
    """``wakeups >= 2``: in poll mode every waiter wakes (K4); otherwise only one.

    In poll mode the formula says only "if several woke, another process was waiting": the
    converse would put a waiter's capacity (∀ connections) under a negation and leave the
    decidable fragment. No invariant reads ``woke_many`` in poll mode (``wakes_at_most_one``
    does not apply there), so the missing direction costs nothing.
    """
    if config.mode is not Mode.POLL:
        return FALSE
    woke = local.const("bool", "woke_many")
    other = var("proc", "ac_other")
    local.require(
        implies(woke, exists([other], conj(other != p, q.is_waiting_on(config, pre, other, s))))
    )
    return woke


def acquire_mutex(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.acquire_mutex``: CAS 0 → pid (ngx_shmtx_trylock)."""
    (p,) = args
    if config.mode is not Mode.MUTEX:
        return Effect(FALSE)
    guard = conj(
        neg(pre.locked()),
        pre.p_in(p),
        q.worker(pre, p),
        pre.phase(p) == q.RUNNING,
        neg(pre.stopped(p)),
        neg(pre.quit(p)),
        q.holds_any(pre, p),
        q.has_capacity(config, pre, p),
        neg(q.barred_orphan(config, pre, p)),
    )
    return Effect(
        guard,
        {
            "holds_mutex": _point(pre.holds_mutex, p, TRUE),
            "locked": lambda: TRUE,
            "holder": lambda: p,
        },
    )


def release_mutex(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.release_mutex``: CAS pid → 0."""
    (p,) = args
    guard = conj(pre.holds_mutex(p), q.can_run(pre, p))
    return Effect(
        guard,
        {
            "holds_mutex": _point(pre.holds_mutex, p, FALSE),
            "locked": lambda: conj(pre.locked(), pre.holder() != p),
        },
    )


def pass_connection(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.pass_connection``: SCM_RIGHTS from the owning master to its worker."""
    c, p = args
    owner = local.const("proc", "owner")
    guard = conj(
        pre.c_in(c),
        pre.fate(c) == q.ACCEPTED,
        pre.owns(c, owner),
        pre.master(owner),
        q.can_run(pre, owner),
        pre.p_in(p),
        q.worker(pre, p),
        pre.parent(p, owner),
        pre.phase(p) == q.RUNNING,
        neg(pre.stopped(p)),
        q.has_capacity(config, pre, p),
    )
    return Effect(guard, {"owns": _row(pre.owns, c, lambda y: y == p)})


def _in_hand(pre: Vocab, local: Locals, c: Term, *, requested: bool) -> Formula:
    """``c`` is accepted, its request came (or not), and its owner is a worker that can run."""
    owner = local.const("proc", "owner")
    came = pre.requested(c) if requested else neg(pre.requested(c))
    return conj(
        pre.c_in(c),
        pre.fate(c) == q.ACCEPTED,
        came,
        pre.owns(c, owner),
        q.worker(pre, owner),
        q.can_run(pre, owner),
    )


def serve_request(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.serve_request``: the worker responds (an orphan too: what it has in hand)."""
    (c,) = args
    guard = _in_hand(pre, local, c, requested=True)
    return Effect(guard, {"fate": _point(pre.fate, c, fate(Fate.SERVED))})


def close_idle_connection(
    config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals
) -> Effect:
    """``actions.close_idle_connection``: the worker closes a connection whose request never
    came, at once or when its read timeout expires (F3); a stopping master closes one it holds."""
    (c,) = args
    holder = local.const("proc", "holder")
    stopping_master = conj(
        pre.c_in(c),
        pre.fate(c) == q.ACCEPTED,
        pre.owns(c, holder),
        pre.master(holder),
        q.can_run(pre, holder),
        pre.shutdown(holder) != shutdown(Shutdown.NONE),
    )
    guard = disj(_in_hand(pre, local, c, requested=False), stopping_master)
    return Effect(guard, {"fate": _point(pre.fate, c, fate(Fate.CLOSED))})


def admit_deferred(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.admit_deferred``: a held-back connection enters its queue when there is room
    (the defer timeout, or room after a full queue, K19)."""
    (c,) = args
    home = local.const("sock", "home")
    guard = conj(
        pre.c_in(c),
        pre.fate(c) == q.DEFERRED,
        pre.arrived_on(c, home),
        neg(q.queue_full(config, pre, home)),
    )
    return Effect(guard, _enqueue(pre, c, home, TRUE))


def close_listeners(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.close_listeners``: a stopping master (F1) or an exiting worker (F2) closes its
    listening descriptors."""
    (p,) = args
    stopping = disj(
        conj(pre.master(p), pre.shutdown(p) != shutdown(Shutdown.NONE)),
        conj(q.worker(pre, p), pre.phase(p) == q.EXITING),
    )
    guard = conj(q.can_run(pre, p), q.holds_any(pre, p), stopping)
    return Effect(guard, _closes_own(pre, local, p))


def spawn_helper(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.spawn_helper``: the master forks a helper, which closes the listening
    descriptors it inherited unless the design leaks them (K2, K18)."""
    (m,) = args
    n = local.const("proc", "new_helper")
    local.require(q.is_fresh_process(pre, n))
    keeps = boolean(not config.helpers_close_listeners)
    new = NewProcess(n, Role.HELPER, m, pre.gen(m), None, lambda s: conj(keeps, pre.holds(m, s)))
    return Effect(q.commandable(pre, m), _create_process(pre, new))


def exit_helper(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.exit_helper``: the helper exits; its descriptors close."""
    (p,) = args
    guard = conj(q.can_run(pre, p), pre.helper(p))
    return Effect(guard, _exit_one(config, pre, local, p))


def begin_graceful_exit(
    config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals
) -> Effect:
    """``actions.begin_graceful_exit``: stop accepting and drop the mutex; the descriptors and
    the connections in hand stay (F2, F3)."""
    (p,) = args
    guard = conj(
        pre.p_in(p),
        q.worker(pre, p),
        pre.quit(p),
        pre.phase(p) == q.RUNNING,
        neg(pre.stopped(p)),
    )
    return Effect(
        guard,
        {
            "phase": _point(pre.phase, p, q.EXITING),
            "holds_mutex": _point(pre.holds_mutex, p, FALSE),
            "locked": lambda: conj(pre.locked(), pre.holder() != p),
        },
    )


def exit_worker(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.exit_worker``: on TERM, on noticing its master's death, or at the end of a
    graceful exit (once it owns nothing, unless the design drops requests in hand: those are
    ABANDONED when nothing excuses the exit)."""
    (p,) = args
    running = neg(pre.stopped(p))
    terminated = conj(pre.terminate(p), running)
    noticed = q.notices_master_death(config, pre, p)
    finished = conj(pre.phase(p) == q.EXITING, running)
    if config.graceful_waits_for_requests:
        finished = conj(finished, q.owns_nothing(pre, p))
    guard = conj(q.alive(pre, p), q.worker(pre, p), disj(terminated, noticed, finished))
    excused = local.let("excused", disj(pre.terminate(p), noticed))

    def in_flight(c: Term) -> Term:
        dropped = conj(neg(excused), pre.requested(c))
        return ite(dropped, fate(Fate.ABANDONED), fate(Fate.RESET))

    return Effect(guard, _exit_one(config, pre, local, p, in_flight))


def reap(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.reap``: waitpid; force-unlock; without respawn the slot is abandoned."""
    (p,) = args
    m = local.const("proc", "reaper")
    guard = conj(
        pre.p_in(p),
        pre.phase(p) == q.DEAD,
        pre.parent(p, m),
        pre.master(m),
        q.can_run(pre, m),
    )
    updates: dict[str, Update] = {"p_in": lambda x: conj(pre.p_in(x), x != p)}
    if config.force_unlock:
        updates["locked"] = lambda: conj(pre.locked(), pre.holder() != p)
    if not config.respawn:
        crashed = conj(
            q.worker(pre, p),
            pre.gen(p) == pre.gen(m),
            pre.shutdown(m) == shutdown(Shutdown.NONE),
        )
        updates["abandoned"] = lambda x, i: disj(
            pre.abandoned(x, i), conj(x == m, crashed, pre.wslot(p, i))
        )
    return Effect(guard, updates)


def exit_master(config: Config, pre: Vocab, args: tuple[Term, ...], local: Locals) -> Effect:
    """``actions.exit_master``: after a shutdown, with nothing in hand, once every live worker
    of its was told to stop (it may leave before them, F8)."""
    (m,) = args
    c = var("proc", "em_c")
    all_told = forall([c], implies(q.worker_child(pre, c, m), q.told_to_stop(pre, c)))
    guard = conj(
        q.live_master(pre, m),
        pre.shutdown(m) != shutdown(Shutdown.NONE),
        all_told,
        q.owns_nothing(pre, m),
    )
    return Effect(guard, _exit_one(config, pre, local, m))


TRANSITIONS: dict[str, Builder] = {
    "start_master": start_master,
    "connect": connect,
    "send_request": send_request,
    "close_connection": close_connection,
    "kill_worker": kill_worker,
    "stop_worker": stop_worker,
    "continue_worker": continue_worker,
    "reload": reload,
    "graceful_shutdown": graceful_shutdown,
    "fast_shutdown": fast_shutdown,
    "upgrade": upgrade,
    "kill_master": kill_master,
    "spawn_worker": spawn_worker,
    "retire_generation": retire_generation,
    "rebind_listeners": rebind_listeners,
    "accept": accept,
    "acquire_mutex": acquire_mutex,
    "release_mutex": release_mutex,
    "pass_connection": pass_connection,
    "serve_request": serve_request,
    "close_idle_connection": close_idle_connection,
    "receive_listeners": receive_listeners,
    "admit_deferred": admit_deferred,
    "close_listeners": close_listeners,
    "spawn_helper": spawn_helper,
    "exit_helper": exit_helper,
    "begin_graceful_exit": begin_graceful_exit,
    "exit_worker": exit_worker,
    "reap": reap,
    "exit_master": exit_master,
    "kill_stragglers": kill_stragglers,
}
"""The z3 transition of every action, by the name in :data:`forkshare.model.actions.ACTIONS`."""
