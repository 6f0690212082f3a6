"""Strengthening lemmas: the facts the invariants need to be inductive, proved like the invariants.

An invariant is *inductive* when every action preserves it from every state that satisfies it.
Most of the model's invariants are not inductive alone: they hold in every reachable state for a
reason that another, unstated fact explains. Each lemma below states one such fact, says which
invariant needs it and why, and is itself proved (init and consecution for every action), so the
conjunction of the invariants and the lemmas is inductive — and therefore holds in every reachable
state, for every number of workers, connections, sockets and generations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from forkshare.model.config import Config, Mode
from forkshare.proofs import predicates as q
from forkshare.proofs.encoding import (
    Formula,
    Vocab,
    conj,
    exists,
    forall,
    implies,
    neg,
    var,
)


def _always(config: Config) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Lemma:
    """A named strengthening fact: its formula, why it is needed, which configurations use it."""

    name: str
    why: str
    formula: Callable[[Config, Vocab], Formula]
    applies: Callable[[Config], bool] = _always


def parents_are_live_masters(config: Config, v: Vocab) -> Formula:
    """A process's parent pid names a live master (exit reparents the children first)."""
    x, y = var("proc", "L1_x"), var("proc", "L1_y")
    return forall([x, y], implies(conj(v.p_in(x), v.parent(x, y)), q.live_master(v, y)))


def owners_are_alive(config: Config, v: Vocab) -> Formula:
    """An accepted connection belongs to one live process (exit resets what a process owns)."""
    c, p, p2 = var("conn", "L4_c"), var("proc", "L4_p"), var("proc", "L4_p2")
    return conj(
        forall([c, p], implies(q.owned(v, c, p), q.alive(v, p))),
        forall([c, p, p2], implies(conj(q.owned(v, c, p), v.owns(c, p2)), p == p2)),
    )


def mutex_unused(config: Config, v: Vocab) -> Formula:
    """Outside mutex mode nobody takes the accept mutex."""
    p = var("proc", "L5_p")
    return conj(neg(v.locked()), forall([p], implies(v.p_in(p), neg(v.holds_mutex(p)))))


def commandable_masters_share_sockets(config: Config, v: Vocab) -> Formula:
    """A commandable master holds every socket another live master holds (an upgrade in
    progress shares them; a master that shut down holds none)."""
    a, b, s = var("proc", "L6_a"), var("proc", "L6_b"), var("sock", "L6_s")
    both = conj(q.live_master(v, a), q.commandable(v, b), v.holds(a, s))
    return forall([a, b, s], implies(both, v.holds(b, s)))


def a_commandable_master_holds_a_socket(config: Config, v: Vocab) -> Formula:
    """While the service runs, some commandable master holds a socket."""
    m, s = var("proc", "L7_m"), var("sock", "L7_s")
    return implies(q.service_running(v), exists([m, s], conj(q.commandable(v, m), v.holds(m, s))))


def workers_share_with_masters(config: Config, v: Vocab) -> Formula:
    """A worker (or helper) whose parent is in the table holds only sockets every commandable
    master holds (it inherited them, or was sent them; a master that could start beside it
    would need its parent gone)."""
    w, y, b, s = (
        var("proc", "L10_w"),
        var("proc", "L10_y"),
        var("proc", "L10_b"),
        var("sock", "L10_s"),
    )
    parented = conj(v.p_in(w), neg(v.master(w)), v.parent(w, y), v.p_in(y), v.holds(w, s))
    return forall([w, y, b, s], implies(conj(parented, q.commandable(v, b)), v.holds(b, s)))


def commandable_master_holds_every_listener(config: Config, v: Vocab) -> Formula:
    """Outside reuseport mode, a commandable master holds every listening socket."""
    m, s = var("proc", "L8_m"), var("sock", "L8_s")
    return forall(
        [m, s],
        implies(conj(q.commandable(v, m), v.s_in(s), v.listening(s)), v.holds(m, s)),
    )


def no_slot_abandoned(config: Config, v: Vocab) -> Formula:
    """With respawn, no master ever gives up a slot."""
    m, i = var("proc", "L9_m"), var("slot", "L9_i")
    return forall([m, i], implies(v.p_in(m), neg(v.abandoned(m, i))))


def mutex_holder_is_a_worker(config: Config, v: Vocab) -> Formula:
    """Only workers take the mutex, and a fresh pid is never the one in the lock word."""
    return implies(conj(v.locked(), v.p_in(v.holder())), neg(v.master(v.holder())))


def mutex_believer_holds_a_socket(config: Config, v: Vocab) -> Formula:
    """Whoever believes it holds the mutex holds a listening socket (it took the mutex with one,
    and drops the belief when it closes them)."""
    p, s = var("proc", "L11_p"), var("sock", "L11_s")
    believer = conj(v.p_in(p), v.holds_mutex(p))
    return implies(exists([p], believer), exists([p, s], conj(believer, v.holds(p, s))))


def mutex_believer_is_running(config: Config, v: Vocab) -> Formula:
    """Whoever believes it holds the mutex is running: a worker drops the belief when it begins
    its graceful exit, and takes the mutex only while running."""
    p = var("proc", "L16_p")
    return forall([p], implies(conj(v.p_in(p), v.holds_mutex(p)), v.phase(p) == q.RUNNING))


def dead_holder_has_a_parent(config: Config, v: Vocab) -> Formula:
    """A zombie whose pid is in the lock word still has its master (init reaps a zombie whose
    master is gone, and frees the lock word with it)."""
    h, y = v.holder(), var("proc", "L13_y")
    zombie = conj(v.locked(), v.p_in(h), v.phase(h) == q.DEAD)
    return implies(zombie, exists([y], conj(v.parent(h, y), v.p_in(y))))


def masters_are_never_stopped(config: Config, v: Vocab) -> Formula:
    """Nobody SIGSTOPs a master (only workers are stopped)."""
    m = var("proc", "L12_m")
    return forall([m], implies(conj(v.p_in(m), v.master(m)), neg(v.stopped(m))))


def lock_word_matches_belief(config: Config, v: Vocab) -> Formula:
    """A live process whose pid is in the lock word believes it holds the mutex."""
    return implies(conj(v.locked(), q.alive(v, v.holder())), v.holds_mutex(v.holder()))


def held_back_never_accepted(config: Config, v: Vocab) -> Formula:
    """A connection held back by TCP_DEFER_ACCEPT was never accepted (it comes from connect)."""
    c = var("conn", "L14_c")
    held = conj(v.c_in(c), v.fate(c) == q.DEFERRED)
    return forall([c], implies(held, neg(v.accepted_once(c))))


def arrived_on_one_socket(config: Config, v: Vocab) -> Formula:
    """A connection arrived on one socket at most (``Connection.listener`` is one sid)."""
    c, s, s2 = var("conn", "L15_c"), var("sock", "L15_s"), var("sock", "L15_s2")
    both = conj(v.c_in(c), v.arrived_on(c, s), v.arrived_on(c, s2))
    return forall([c, s, s2], implies(both, s == s2))


LEMMAS: dict[str, Lemma] = {
    lemma.name: lemma
    for lemma in (
        Lemma(
            "parents_are_live_masters",
            "dead_holder_has_a_parent in mutex mode under the exits of workers, helpers and "
            "masters, and workers_share_with_masters in reuseport mode under the forks and "
            "start_master: a parent pid always names a live master, because an exit "
            "reparents (or has init reap) its children first",
            parents_are_live_masters,
        ),
        Lemma(
            "owners_are_alive",
            "type_ok under reap, kill_master, exit_master and exit_helper: removing a "
            "process must not leave an accepted connection whose owner is gone (exit resets "
            "what a process owns)",
            owners_are_alive,
        ),
        Lemma(
            "mutex_unused",
            "at_most_one_mutex_holder under start_master outside mutex mode: the new "
            "master's fresh lock word must not strand a process that believes it holds the "
            "mutex",
            mutex_unused,
            applies=lambda config: config.mode is not Mode.MUTEX,
        ),
        Lemma(
            "commandable_masters_share_sockets",
            "a_commandable_master_holds_a_socket and port_keeps_listening in reuseport mode "
            "under graceful_shutdown, fast_shutdown and kill_master: an upgrade's other "
            "master still holds the sockets",
            commandable_masters_share_sockets,
        ),
        Lemma(
            "a_commandable_master_holds_a_socket",
            "port_keeps_listening in reuseport mode under kill_worker, exit_worker and "
            "close_listeners: a socket a commandable master holds cannot close",
            a_commandable_master_holds_a_socket,
        ),
        Lemma(
            "workers_share_with_masters",
            "listeners_keep_identity and no_queued_connection_lost in reuseport mode under "
            "the exits of workers and close_listeners (F2): a worker whose master serves can "
            "never be a socket's last holder",
            workers_share_with_masters,
            applies=lambda config: config.mode is Mode.REUSEPORT,
        ),
        Lemma(
            "commandable_master_holds_every_listener",
            "listeners_keep_identity and no_queued_connection_lost outside reuseport mode "
            "under the exits of workers and close_listeners (F2): a socket closes only once "
            "no master serves it",
            commandable_master_holds_every_listener,
            applies=lambda config: config.mode is not Mode.REUSEPORT,
        ),
        Lemma(
            "mutex_holder_is_a_worker",
            "mutex_believer_holds_a_socket under close_listeners (a stopping master closes "
            "its descriptors, F1) and dead_holder_has_a_parent under exit_master and "
            "kill_master: a master is never the holder",
            mutex_holder_is_a_worker,
            applies=lambda config: config.mode is Mode.MUTEX,
        ),
        Lemma(
            "mutex_believer_holds_a_socket",
            "at_most_one_mutex_holder under start_master in mutex mode: a new master (whose "
            "lock word starts free) can only bind once no believer is left",
            mutex_believer_holds_a_socket,
            applies=lambda config: config.mode is Mode.MUTEX,
        ),
        Lemma(
            "mutex_believer_is_running",
            "mutex_believer_holds_a_socket under close_listeners: only an exiting worker "
            "closes its descriptors, and it has dropped the mutex",
            mutex_believer_is_running,
            applies=lambda config: config.mode is Mode.MUTEX,
        ),
        Lemma(
            "dead_holder_has_a_parent",
            "dead_holder_is_reaped: a dead holder is a zombie its master can reap",
            dead_holder_has_a_parent,
            applies=lambda config: config.mode is Mode.MUTEX,
        ),
        Lemma(
            "masters_are_never_stopped",
            "dead_holder_is_reaped: the master that reaps the dead holder can run",
            masters_are_never_stopped,
            applies=lambda config: config.mode is Mode.MUTEX,
        ),
        Lemma(
            "lock_word_matches_belief",
            "accept_when_work_waits in mutex mode: a live holder of the lock word believes "
            "it holds the mutex, so it can release it",
            lock_word_matches_belief,
            applies=lambda config: config.mode is Mode.MUTEX,
        ),
        Lemma(
            "held_back_never_accepted",
            "accepted_at_most_once under send_request and admit_deferred: a held-back "
            "connection enters the queue, where it must not count as accepted already",
            held_back_never_accepted,
        ),
        Lemma(
            "arrived_on_one_socket",
            "type_ok under send_request and admit_deferred: a held-back connection is queued "
            "on the socket it arrived on, which type_ok says exists and listens",
            arrived_on_one_socket,
        ),
        Lemma(
            "no_slot_abandoned",
            "reuseport_queue_has_consumer under every exit, close_listeners and the "
            "shutdowns (in every mode: nothing else says that no socket is a reuseport one "
            "outside reuseport mode): with respawn a commandable master refills every slot, "
            "so it is the pending consumer",
            no_slot_abandoned,
            applies=lambda config: config.respawn,
        ),
    )
}
"""Every strengthening lemma, by name. Each one is needed: removing any of them makes some
consecution (or progress) obligation fail, as ``tests/proofs`` checks."""
