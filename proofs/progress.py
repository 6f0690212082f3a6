"""Progress: the model's deadlock-freedom conditions as enabledness facts, proved for all sizes.

Safety says nothing bad happens; these facts say the accept path cannot get stuck. Each is a
premise about a state and a conclusion that some action is *enabled* (its guard holds), proved
in every state satisfying the invariants and lemmas — hence in every reachable state, for every
number of workers and connections. The conclusion names the process that can step, rather than
"some process", which keeps each check in the decidable fragment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from forkshare.model.actions import ACTIONS, has_capacity
from forkshare.model.config import Config, Mode
from forkshare.model.state import Phase, System
from forkshare.proofs import predicates as q
from forkshare.proofs.encoding import (
    Formula,
    Locals,
    Term,
    Vocab,
    conj,
    disj,
    exists,
    implies,
    neg,
    symbols_of,
    var,
)
from forkshare.proofs.transitions import effect

Build = Callable[[Config, Vocab, Locals], tuple[Formula, Formula]]


@dataclass(frozen=True, slots=True)
class ProgressFact:
    """A named enabledness fact: in every state where ``premise`` holds, ``conclusion`` does."""

    name: str
    claim: str
    applies: Callable[[Config], bool]
    build: Build
    violated: Callable[[Config, System], bool]
    """The same fact on a Python state: true when the state breaks it (for replays)."""


def enabled(config: Config, v: Vocab, name: str, args: tuple[Term, ...], prefix: str) -> Formula:
    """Action ``name``'s guard holds for ``args`` (for some choice of its internal elements)."""
    local = Locals(prefix)
    guard = effect(config, name, v, args, local).guard
    mentioned = symbols_of(guard)
    hidden = [term for term, _ in local.loose() if str(term) in mentioned]
    return exists(hidden, guard) if hidden else guard


def accept_when_work_waits(config: Config, v: Vocab, local: Locals) -> tuple[Formula, Formula]:
    """A queued connection and a worker free to take it: that worker can accept it (mutex mode:
    or take the mutex, or the live holder can release it)."""
    c, s, p = local.const("conn", "c"), local.const("sock", "s"), local.const("proc", "p")
    y = var("proc", "pg_y")
    premise = conj(
        v.s_in(s),
        v.in_queue(c, s),
        v.p_in(p),
        q.worker(v, p),
        v.phase(p) == q.RUNNING,
        neg(v.stopped(p)),
        neg(v.quit(p)),
        q.has_capacity(config, v, p),
        v.holds(p, s),
        exists([y], conj(v.parent(p, y), v.p_in(y))),
    )
    conclusion = enabled(config, v, "accept", (p, s), "pg_accept!")
    if config.mode is Mode.MUTEX:
        holder = v.holder()
        premise = conj(premise, implies(v.locked(), q.can_run(v, holder)))
        conclusion = disj(
            conclusion,
            enabled(config, v, "acquire_mutex", (p,), "pg_acquire!"),
            enabled(config, v, "release_mutex", (holder,), "pg_release!"),
        )
    return premise, conclusion


def dead_holder_is_reaped(config: Config, v: Vocab, local: Locals) -> tuple[Formula, Formula]:
    """With force-unlock, a dead holder of the accept mutex can always be reaped (which frees it)."""
    holder = v.holder()
    premise = conj(v.locked(), neg(q.alive(v, holder)))
    return premise, enabled(config, v, "reap", (holder,), "pg_reap!")


def _stuck_accept(config: Config, state: System) -> bool:
    """``accept_when_work_waits`` fails in a Python state."""
    holder = state.process(state.mutex)
    if config.mode is Mode.MUTEX and state.mutex and (holder is None or not holder.can_run):
        return False
    for lst in state.listeners:
        if not lst.queue:
            continue
        for proc in state.processes:
            if _eligible(config, state, proc.pid, lst.sid) and not _can_step(
                config, state, proc.pid, lst.sid
            ):
                return True
    return False


def _eligible(config: Config, state: System, pid: int, sid: int) -> bool:
    proc = state.process(pid)
    assert proc is not None
    return (
        proc.is_worker
        and proc.phase is Phase.RUNNING
        and not proc.stopped
        and not proc.quit_requested
        and has_capacity(config, state, proc)
        and sid in proc.fds
        and state.process(proc.parent) is not None
    )


def _can_step(config: Config, state: System, pid: int, sid: int) -> bool:
    if ACTIONS["accept"].guard(config, state, pid, sid):
        return True
    if config.mode is not Mode.MUTEX:
        return False
    return ACTIONS["acquire_mutex"].guard(config, state, pid) or ACTIONS["release_mutex"].guard(
        config, state, state.mutex
    )


def _stuck_holder(config: Config, state: System) -> bool:
    """``dead_holder_is_reaped`` fails in a Python state."""
    holder = state.process(state.mutex)
    dead = state.mutex != 0 and (holder is None or not holder.is_alive)
    return dead and not ACTIONS["reap"].guard(config, state, state.mutex)


PROGRESS: dict[str, ProgressFact] = {
    fact.name: fact
    for fact in (
        ProgressFact(
            "accept_when_work_waits",
            "In the shared modes, a queued connection and a free worker holding its socket "
            "mean some accept (or mutex step) is enabled.",
            lambda config: config.is_shared,
            accept_when_work_waits,
            _stuck_accept,
        ),
        ProgressFact(
            "dead_holder_is_reaped",
            "With force-unlock, a dead holder never blocks the accept mutex: reaping it is "
            "enabled.",
            lambda config: config.mode is Mode.MUTEX and config.force_unlock,
            dead_holder_is_reaped,
            _stuck_holder,
        ),
    )
}
"""Every progress fact, by name."""
