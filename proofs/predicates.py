"""Derived predicates over one state, shared by the transition and invariant formulas.

Each function mirrors a query of the Python model (``Process.is_alive``, ``System.is_orphan``,
``actions.is_waiting_on``, …) and says which one in its docstring. Bound variables get names no
other helper uses, so a helper can be applied to a variable bound by its caller without capture.
"""

from __future__ import annotations

from forkshare.model.config import Config, Mode
from forkshare.model.state import Fate, Phase, Shutdown
from forkshare.proofs.encoding import (
    FALSE,
    TRUE,
    Formula,
    Term,
    Vocab,
    conj,
    disj,
    distinct,
    exists,
    fate,
    forall,
    implies,
    neg,
    phase,
    shutdown,
    var,
)

DEAD = phase(Phase.DEAD)
RUNNING = phase(Phase.RUNNING)
EXITING = phase(Phase.EXITING)
NONE = shutdown(Shutdown.NONE)
QUEUED = fate(Fate.QUEUED)
DEFERRED = fate(Fate.DEFERRED)
ACCEPTED = fate(Fate.ACCEPTED)


def worker(v: Vocab, p: Term) -> Formula:
    """``Process.is_worker``: neither a master nor a helper."""
    return conj(neg(v.master(p)), neg(v.helper(p)))


def alive(v: Vocab, p: Term) -> Formula:
    """``Process.is_alive`` of a process in the table."""
    return conj(v.p_in(p), v.phase(p) != DEAD)


def can_run(v: Vocab, p: Term) -> Formula:
    """``Process.can_run``: in the table, alive and not stopped."""
    return conj(alive(v, p), neg(v.stopped(p)))


def live_master(v: Vocab, m: Term) -> Formula:
    """A member of ``System.live_masters``."""
    return conj(alive(v, m), v.master(m))


def commandable(v: Vocab, m: Term) -> Formula:
    """``actions.can_command``: a live master not told to shut down."""
    return conj(live_master(v, m), v.shutdown(m) == NONE)


def service_running(v: Vocab) -> Formula:
    """``System.service_running``: some commandable master exists."""
    m = var("proc", "svc_m")
    return exists([m], commandable(v, m))


def parent_serves(v: Vocab, p: Term) -> Formula:
    """``kernel.serves_running_service`` of a worker: its parent is a commandable master (an
    orphan belongs to no running server)."""
    y = var("proc", "srv_y")
    return exists([y], conj(v.parent(p, y), commandable(v, y)))


def holder(v: Vocab, p: Term, s: Term) -> Formula:
    """A member of ``System.holders(s)``: a process in the table with a descriptor for ``s``."""
    return conj(v.p_in(p), v.holds(p, s))


def holds_any(v: Vocab, p: Term) -> Formula:
    """``bool(proc.fds)``."""
    s = var("sock", "any_s")
    return exists([s], v.holds(p, s))


def orphan(v: Vocab, p: Term) -> Formula:
    """``System.is_orphan``: a worker whose parent pid is not in the process table."""
    q = var("proc", "orph_q")
    return conj(worker(v, p), forall([q], implies(v.parent(p, q), neg(v.p_in(q)))))


def barred_orphan(config: Config, v: Vocab, p: Term) -> Formula:
    """``actions.is_barred_orphan``: an orphan that may accept nothing (its workers notice the
    master's death at once: ``Config.orphans_accept_nothing``), unless it was told to stop
    before (F8: it may take one more before it acts on the stop)."""
    if not config.orphans_accept_nothing:
        return FALSE
    return conj(orphan(v, p), neg(v.quit(p)))


def silently_dropped(v: Vocab, c: Term) -> Formula:
    """``observation.is_silently_dropped``: held back when its listener closed, and the client
    has sent nothing, so it still believes it is connected (K19)."""
    lost = disj(v.fate(c) == fate(Fate.ABORTED), v.fate(c) == fate(Fate.DISCARDED))
    return conj(lost, v.held_back(c), neg(v.requested(c)))


def told_to_stop(v: Vocab, p: Term) -> Formula:
    """``Process.was_told_to_stop``: told to quit gracefully or to terminate."""
    return disj(v.quit(p), v.terminate(p))


def notices_master_death(config: Config, v: Vocab, p: Term) -> Formula:
    """``actions._notices_master_death``: an orphan that may leave now, because it was not told
    to finish its requests or its master was SIGKILLed (under orphans-serve too: that policy
    allows orphans to keep serving, it does not require it)."""
    return conj(orphan(v, p), disj(neg(v.quit(p)), v.master_killed(p)))


def owned(v: Vocab, c: Term, p: Term) -> Formula:
    """A member of ``System.owned(p)``: an accepted connection whose owner is ``p``."""
    return conj(v.c_in(c), v.fate(c) == ACCEPTED, v.owns(c, p))


def owns_nothing(v: Vocab, p: Term) -> Formula:
    """``not System.owned(p)``."""
    c = var("conn", "own_c")
    return forall([c], neg(owned(v, c, p)))


def has_capacity(config: Config, v: Vocab, p: Term) -> Formula:
    """``actions.has_capacity``: a master always (a passfd master keeps any number of handles
    until the workers acknowledge them); a worker while it owns fewer than
    ``worker_connections`` — exact for one (see :mod:`transitions`)."""
    if config.worker_connections == 1:
        return disj(v.master(p), owns_nothing(v, p))
    # A worker with K > 1 slots may or may not have room: counting is not first-order, so the
    # guard is dropped (an over-approximation).
    return TRUE


def is_waiting_on(config: Config, v: Vocab, p: Term, s: Term) -> Formula:
    """``actions.is_waiting_on``: ``p`` sleeps in accept (or epoll) on ``s``."""
    common = conj(
        v.p_in(p),
        v.phase(p) == RUNNING,
        neg(v.stopped(p)),
        v.holds(p, s),
        v.listening(s),
        has_capacity(config, v, p),
        neg(barred_orphan(config, v, p)),
    )
    return conj(common, _mode_waits(config, v, p, s))


def _mode_waits(config: Config, v: Vocab, p: Term, s: Term) -> Formula:
    if config.mode is Mode.PASSFD:
        return conj(v.master(p), v.shutdown(p) == NONE)
    is_worker = worker(v, p)
    if config.mode is Mode.MUTEX:
        return conj(is_worker, v.holds_mutex(p), v.locked(), v.holder() == p)
    if config.mode is Mode.REUSEPORT:
        i = var("slot", "wait_i")
        return conj(is_worker, exists([i], conj(v.wslot(p, i), v.sslot(s, i))))
    return is_worker


def queue_full(config: Config, v: Vocab, s: Term) -> Formula:
    """``len(listener.queue) > listener.backlog``: backlog+1 distinct connections are queued."""
    cs = [var("conn", f"full_c{k}") for k in range(config.backlog + 1)]
    return exists(cs, conj(distinct(*cs), *[v.in_queue(c, s) for c in cs]))


def slot_is_filled(v: Vocab, m: Term, i: Term) -> Formula:
    """``actions.slot_is_filled``: a worker child of ``m`` of its current generation in slot ``i``."""
    c = var("proc", "fill_c")
    return exists(
        [c],
        conj(v.p_in(c), v.parent(c, m), worker(v, c), v.gen(c) == v.gen(m), v.wslot(c, i)),
    )


def bind_conflicts(v: Vocab, reuseport: bool) -> Formula:
    """``kernel.bind_conflicts``: a socket listens on the port and not both set SO_REUSEPORT."""
    s = var("sock", "bind_s")
    clash = neg(v.reuseport(s)) if reuseport else TRUE
    return exists([s], conj(v.s_in(s), v.listening(s), clash))


def is_fresh_process(v: Vocab, n: Term) -> Formula:
    """``n`` can be the next pid: not in the table and not the pid in the lock word."""
    return conj(neg(v.p_in(n)), neg(conj(v.locked(), v.holder() == n)))


def worker_child(v: Vocab, x: Term, m: Term) -> Formula:
    """``x`` is a live worker child of ``m`` (who ``_request_quit`` and fast shutdown reach)."""
    return conj(alive(v, x), v.parent(x, m), worker(v, x))


def waits_for_admission(v: Vocab, c: Term, s: Term) -> Formula:
    """A member of ``System.deferred_on(s)``: held back by TCP_DEFER_ACCEPT on ``s`` (K19)."""
    return conj(v.fate(c) == DEFERRED, v.arrived_on(c, s))
