"""One z3 formula per model invariant, keyed by the name in :data:`~forkshare.model.invariants.INVARIANTS`.

Each builder says the same as the Python predicate of the same name, over the elements that are
there (``p_in``, ``s_in``, ``c_in``), so that on the structure of any concrete state the two
agree: the link test in ``tests/proofs`` checks exactly that. Whether an invariant is claimed for
a configuration is the model's business (``Invariant.applies``), not this module's.
"""

from __future__ import annotations

from collections.abc import Callable

from forkshare.model.config import Config, Mode
from forkshare.model.state import Fate
from forkshare.proofs import predicates as q
from forkshare.proofs.encoding import (
    Formula,
    Term,
    Vocab,
    boolean,
    conj,
    disj,
    distinct,
    exists,
    fate,
    forall,
    implies,
    neg,
    var,
)

Claim = Callable[[Config, Vocab], Formula]


def type_ok(config: Config, v: Vocab) -> Formula:
    """``invariants.type_ok``."""
    p, s, s2, c = var("proc", "t_p"), var("sock", "t_s"), var("sock", "t_s2"), var("conn", "t_c")
    o = var("proc", "t_o")
    return conj(
        forall(
            [c, s, s2],
            implies(conj(v.s_in(s), v.s_in(s2), v.in_queue(c, s), v.in_queue(c, s2)), s == s2),
        ),
        forall([p, s], implies(conj(v.p_in(p), v.holds(p, s)), v.s_in(s))),
        forall(
            [p, s],
            implies(
                conj(v.p_in(p), v.phase(p) == q.DEAD),
                conj(neg(v.holds_mutex(p)), neg(v.holds(p, s))),
            ),
        ),
        forall(
            [c],
            implies(
                v.c_in(c),
                (v.fate(c) == q.QUEUED) == exists([s], conj(v.s_in(s), v.in_queue(c, s))),
            ),
        ),
        forall(
            [c],
            implies(
                conj(v.c_in(c), v.fate(c) == q.QUEUED),
                exists([s], conj(v.arrived_on(c, s), v.s_in(s), v.in_queue(c, s))),
            ),
        ),
        forall(
            [c],
            implies(
                conj(v.c_in(c), v.fate(c) == q.ACCEPTED),
                exists([o], conj(v.owns(c, o), v.p_in(o))),
            ),
        ),
        forall(
            [c],
            implies(
                conj(v.c_in(c), v.fate(c) == q.DEFERRED),
                exists([s], conj(v.arrived_on(c, s), v.s_in(s), v.listening(s))),
            ),
        ),
    )


def at_most_one_mutex_holder(config: Config, v: Vocab) -> Formula:
    """``invariants.at_most_one_mutex_holder``."""
    p, p2 = var("proc", "m_p"), var("proc", "m_p2")

    def believes(x: Term) -> Formula:
        return conj(v.p_in(x), v.holds_mutex(x))

    return conj(
        forall([p, p2], implies(conj(believes(p), believes(p2)), p == p2)),
        forall([p], implies(believes(p), conj(v.locked(), v.holder() == p))),
    )


def mutex_holder_is_alive(config: Config, v: Vocab) -> Formula:
    """``invariants.mutex_holder_is_alive``: free, or the pid in the lock word is in the table."""
    return implies(v.locked(), v.p_in(v.holder()))


def accepted_at_most_once(config: Config, v: Vocab) -> Formula:
    """``invariants.accepted_at_most_once``."""
    c = var("conn", "a_c")
    once = conj(neg(v.accepted_twice(c)), implies(v.fate(c) == q.QUEUED, neg(v.accepted_once(c))))
    return forall([c], implies(v.c_in(c), once))


def queue_within_backlog(config: Config, v: Vocab) -> Formula:
    """``invariants.queue_within_backlog``: no backlog+2 distinct connections in one queue."""
    s = var("sock", "b_s")
    cs = [var("conn", f"b_c{k}") for k in range(config.backlog + 2)]
    crowd = conj(v.s_in(s), distinct(*cs), *[v.in_queue(c, s) for c in cs])
    return forall([s, *cs], neg(crowd))


def held_listener_is_listening(config: Config, v: Vocab) -> Formula:
    """``invariants.held_listener_is_listening``."""
    p, s = var("proc", "h_p"), var("sock", "h_s")
    return forall([p, s], implies(conj(v.p_in(p), v.holds(p, s)), v.listening(s)))


def listening_listener_is_held(config: Config, v: Vocab) -> Formula:
    """``invariants.listening_listener_is_held``."""
    p, s = var("proc", "l_p"), var("sock", "l_s")
    return forall([s], implies(conj(v.s_in(s), v.listening(s)), exists([p], q.holder(v, p, s))))


def no_queued_connection_lost(config: Config, v: Vocab) -> Formula:
    """``invariants.no_queued_connection_lost``."""
    c = var("conn", "n_c")
    return forall([c], implies(v.c_in(c), v.fate(c) != fate(Fate.ABORTED)))


def port_keeps_listening(config: Config, v: Vocab) -> Formula:
    """``invariants.port_keeps_listening`` (every socket is on the one configured port)."""
    s = var("sock", "k_s")
    return implies(q.service_running(v), exists([s], conj(v.s_in(s), v.listening(s))))


def listeners_keep_identity(config: Config, v: Vocab) -> Formula:
    """``invariants.listeners_keep_identity``."""
    s = var("sock", "i_s")
    return forall([s], implies(v.s_in(s), neg(v.closed_early(s))))


def no_listener_after_shutdown(config: Config, v: Vocab) -> Formula:
    """``invariants.no_listener_after_shutdown``."""
    p, s = var("proc", "d_p"), var("sock", "d_s")
    empty = forall([p], neg(v.p_in(p)))
    none = forall([s], implies(v.s_in(s), neg(v.listening(s))))
    return implies(conj(v.shut_down_once(), empty), none)


def orphans_exit_with_master(config: Config, v: Vocab) -> Formula:
    """``invariants.orphans_exit_with_master``: no ``orphan_accepts`` anywhere."""
    p = var("proc", "o_p")
    return forall([p], implies(v.p_in(p), neg(v.orphan_accepted(p))))


def requests_in_hand_are_answered(config: Config, v: Vocab) -> Formula:
    """``invariants.requests_in_hand_are_answered``: no connection was abandoned."""
    c = var("conn", "q_c")
    return forall([c], implies(v.c_in(c), v.fate(c) != fate(Fate.ABANDONED)))


def no_leaked_listener(config: Config, v: Vocab) -> Formula:
    """``invariants.no_leaked_listener``: no helper in the table holds a descriptor."""
    p, s = var("proc", "x_p"), var("sock", "x_s")
    return forall([p, s], implies(conj(v.p_in(p), v.helper(p)), neg(v.holds(p, s))))


def master_never_accepts(config: Config, v: Vocab) -> Formula:
    """``invariants.master_never_accepts``."""
    c = var("conn", "w_c")
    passfd = boolean(config.mode is Mode.PASSFD)
    return forall([c], implies(conj(v.c_in(c), v.accepted_once(c)), v.c_by_master(c) == passfd))


def reuseport_queue_has_consumer(config: Config, v: Vocab) -> Formula:
    """``invariants.reuseport_queue_has_consumer``."""
    s, i = var("sock", "r_s"), var("slot", "r_i")
    p, m = var("proc", "r_p"), var("proc", "r_m")
    waiting = conj(v.s_in(s), v.listening(s), v.reuseport(s), v.sslot(s, i))
    worker = conj(q.alive(v, p), q.worker(v, p), v.wslot(p, i), v.holds(p, s))
    respawn = conj(q.commandable(v, m), neg(v.abandoned(m, i)))
    consumer = disj(exists([p], worker), exists([m], respawn))
    return implies(q.service_running(v), forall([s, i], implies(waiting, consumer)))


def single_pending_upgrade(config: Config, v: Vocab) -> Formula:
    """``invariants.single_pending_upgrade``."""
    a, b, c = var("proc", "u_a"), var("proc", "u_b"), var("proc", "u_c")

    def live(x: Term) -> Formula:
        return q.live_master(v, x)

    three = conj(live(a), live(b), live(c), distinct(a, b, c))
    related = disj(v.parent(a, b), v.parent(b, a))
    return conj(
        forall([a, b, c], neg(three)),
        forall([a, b], implies(conj(live(a), live(b), a != b), related)),
    )


def wakes_at_most_one(config: Config, v: Vocab) -> Formula:
    """``invariants.wakes_at_most_one``."""
    c = var("conn", "z_c")
    return forall([c], implies(v.c_in(c), neg(v.woke_many(c))))


CLAIMS: dict[str, Claim] = {
    "type_ok": type_ok,
    "at_most_one_mutex_holder": at_most_one_mutex_holder,
    "mutex_holder_is_alive": mutex_holder_is_alive,
    "accepted_at_most_once": accepted_at_most_once,
    "queue_within_backlog": queue_within_backlog,
    "held_listener_is_listening": held_listener_is_listening,
    "listening_listener_is_held": listening_listener_is_held,
    "listeners_keep_identity": listeners_keep_identity,
    "no_queued_connection_lost": no_queued_connection_lost,
    "port_keeps_listening": port_keeps_listening,
    "no_listener_after_shutdown": no_listener_after_shutdown,
    "orphans_exit_with_master": orphans_exit_with_master,
    "requests_in_hand_are_answered": requests_in_hand_are_answered,
    "no_leaked_listener": no_leaked_listener,
    "master_never_accepts": master_never_accepts,
    "reuseport_queue_has_consumer": reuseport_queue_has_consumer,
    "single_pending_upgrade": single_pending_upgrade,
    "wakes_at_most_one": wakes_at_most_one,
}
"""The z3 formula of every invariant, by the name in the model's table."""
