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
from forkshare.proofs import vocabulary as q
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


def parent_is_unique(config: Config, v: Vocab) -> Formula:
    """A process has at most one parent (``Process.parent`` is one pid)."""
    x, y, z = var("proc", "L2_x"), var("proc", "L2_y"), var("proc", "L2_z")
    return forall(
        [x, y, z], implies(conj(v.p_in(x), v.parent(x, y), v.parent(x, z)), y == z)
    )


def queued_connections_exist(config: Config, v: Vocab) -> Formula:
    """Only connections that were made wait in a queue, and only in a listening socket's."""
    c, s = var("conn", "L3_c"), var("sock", "L3_s")
    return forall(
        [c, s],
        implies(conj(v.s_in(s), v.in_queue(c, s)), conj(v.c_in(c), v.listening(s))),
    )


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
    """Two commandable masters (an upgrade in progress) hold the same sockets."""
    a, b, s = var("proc", "L6_a"), var("proc", "L6_b"), var("sock", "L6_s")
    both = conj(q.commandable(v, a), q.commandable(v, b), v.holds(a, s))
    return forall([a, b, s], implies(both, v.holds(b, s)))


def a_commandable_master_holds_a_socket(config: Config, v: Vocab) -> Formula:
    """While the service runs, some commandable master holds a socket."""
    m, s = var("proc", "L7_m"), var("sock", "L7_s")
    return implies(
        q.service_running(v), exists([m, s], conj(q.commandable(v, m), v.holds(m, s)))
    )


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


def masters_are_never_stopped(config: Config, v: Vocab) -> Formula:
    """Nobody SIGSTOPs a master (only workers are stopped)."""
    m = var("proc", "L12_m")
    return forall([m], implies(conj(v.p_in(m), v.master(m)), neg(v.stopped(m))))


LEMMAS: dict[str, Lemma] = {
    lemma.name: lemma
    for lemma in (
        Lemma(
            "parents_are_live_masters",
            "reap, upgrade and the orphan test read a parent's attributes; exit must reparent first",
            parents_are_live_masters,
        ),
        Lemma("parent_is_unique", "the parent relation is one pid", parent_is_unique),
        Lemma(
            "queued_connections_exist",
            "connect must not find its new connection already queued (queue_within_backlog)",
            queued_connections_exist,
        ),
        Lemma(
            "owners_are_alive",
            "type_ok: reaping a zombie must not leave an accepted connection without owner",
            owners_are_alive,
        ),
        Lemma(
            "mutex_unused",
            "mutex invariants outside mutex mode",
            mutex_unused,
            applies=lambda config: config.mode is not Mode.MUTEX,
        ),
        Lemma(
            "commandable_masters_share_sockets",
            "port_keeps_listening when one of two masters shuts down",
            commandable_masters_share_sockets,
        ),
        Lemma(
            "a_commandable_master_holds_a_socket",
            "port_keeps_listening: a socket that a live master holds does not close",
            a_commandable_master_holds_a_socket,
        ),
        Lemma(
            "commandable_master_holds_every_listener",
            "listeners_keep_identity, no_queued_connection_lost: a socket closes only when the "
            "service stops",
            commandable_master_holds_every_listener,
            applies=lambda config: config.mode is not Mode.REUSEPORT,
        ),
        Lemma(
            "mutex_holder_is_a_worker",
            "mutex_holder_is_alive: a master's exit (which may remove it at once) never strands "
            "the lock word",
            mutex_holder_is_a_worker,
        ),
        Lemma(
            "lock_word_matches_belief",
            "accept_when_work_waits (mutex mode): a live holder can always release",
            lock_word_matches_belief,
        ),
        Lemma(
            "masters_are_never_stopped",
            "dead_holder_is_reaped: the reaping master can run",
            masters_are_never_stopped,
        ),
        Lemma(
            "no_slot_abandoned",
            "reuseport_queue_has_consumer: a commandable master will respawn every slot",
            no_slot_abandoned,
            applies=lambda config: config.respawn,
        ),
    )
}
"""Every strengthening lemma, by name."""
