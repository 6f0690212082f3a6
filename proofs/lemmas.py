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
    """A worker whose parent is in the table holds only sockets every commandable master holds
    (it inherited them; a master that could start beside it would need its parent gone)."""
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


def lock_word_matches_belief(config: Config, v: Vocab) -> Formula:
    """A live process whose pid is in the lock word believes it holds the mutex."""
    return implies(conj(v.locked(), q.alive(v, v.holder())), v.holds_mutex(v.holder()))


LEMMAS: dict[str, Lemma] = {
    lemma.name: lemma
    for lemma in (
        Lemma(
            "parents_are_live_masters",
            "workers_share_with_masters under start_master, spawn_worker and upgrade: a new "
            "element must not already be some process's parent",
            parents_are_live_masters,
        ),
        Lemma(
            "owners_are_alive",
            "type_ok under reap: removing a zombie must not leave an accepted connection "
            "whose owner is gone (exit resets what a process owns)",
            owners_are_alive,
        ),
        Lemma(
            "mutex_unused",
            "mutex_holder_is_alive under kill_worker and exit_worker outside mutex mode: an "
            "orphan's exit removes it at once, which would strand a lock word it held",
            mutex_unused,
            applies=lambda config: config.mode is not Mode.MUTEX,
        ),
        Lemma(
            "commandable_masters_share_sockets",
            "port_keeps_listening in reuseport mode when one of two masters (an upgrade) shuts "
            "down or dies: the other still holds the same sockets",
            commandable_masters_share_sockets,
        ),
        Lemma(
            "a_commandable_master_holds_a_socket",
            "port_keeps_listening in reuseport mode under every exit: a socket a commandable "
            "master holds cannot close",
            a_commandable_master_holds_a_socket,
        ),
        Lemma(
            "workers_share_with_masters",
            "listeners_keep_identity, no_queued_connection_lost in reuseport mode under "
            "fast_shutdown: a master's workers hold nothing the serving master does not (only "
            "orphans do: that is the known issue)",
            workers_share_with_masters,
            applies=lambda config: config.mode is Mode.REUSEPORT,
        ),
        Lemma(
            "commandable_master_holds_every_listener",
            "listeners_keep_identity, no_queued_connection_lost (and port_keeps_listening) under "
            "every exit outside reuseport mode: a socket closes only once no master serves",
            commandable_master_holds_every_listener,
            applies=lambda config: config.mode is not Mode.REUSEPORT,
        ),
        Lemma(
            "mutex_holder_is_a_worker",
            "mutex_holder_is_alive under kill_master and exit_master in mutex mode: a master "
            "that dies without a parent is removed at once, so it must never be the holder",
            mutex_holder_is_a_worker,
            applies=lambda config: config.mode is Mode.MUTEX,
        ),
        Lemma(
            "lock_word_matches_belief",
            "accept_when_work_waits in mutex mode: a live holder of the lock word believes it "
            "holds the mutex, so it can release it",
            lock_word_matches_belief,
            applies=lambda config: config.mode is Mode.MUTEX,
        ),
        Lemma(
            "no_slot_abandoned",
            "reuseport_queue_has_consumer under every exit: with respawn a commandable master "
            "refills every slot, so it is the pending consumer",
            no_slot_abandoned,
            applies=lambda config: config.respawn,
        ),
    )
}
"""Every strengthening lemma, by name. Each one is needed: removing any of them makes some
consecution (or progress) obligation fail, as ``tests/proofs`` checks."""
