"""Every freedom's witness run through the z3 transition relation: the proofs are not about a
specification that forbids what correct servers do.

:data:`forkshare.model.freedoms.FREEDOMS` gives, for each freedom correct servers take (F1–F10,
K19, K20), a witness: concrete steps from the initial state, played through the Python model,
ending where the freedom shows. :func:`check_freedom` asks z3 whether that very run is a run of
the encoding: the first state satisfies the z3 initial-state formula, and each step is the
transition formula of its action with its arguments, between the structures of the two Python
states. A ``found`` record means the proved invariants hold in a model that allows the
behaviour (they hold in every state the encoding reaches, and these states are among them).

Discussion:
    *A given run, not a search.* The witness is the behaviour a real server was seen doing, so
    it is checked as given: a search would find *some* run where, say, the master keeps its
    listener, which says less than "this server's observed run is allowed". The per-action
    witnesses of :mod:`forkshare.proofs.searches` are the searches; both are needed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from forkshare.model.actions import ACTIONS
from forkshare.model.freedoms import FREEDOMS, Freedom, Step, play
from forkshare.model.state import System
from forkshare.model.table import describe_step
from forkshare.model.trace_text import describe_state
from forkshare.proofs.bmc import closed_world, initial
from forkshare.proofs.encoding import (
    Formula,
    Locals,
    Solver,
    Vocab,
    conj,
    distinct,
    element,
    grounded,
    one_of,
    static_axioms,
)
from forkshare.proofs.report import Kind, Record, Result
from forkshare.proofs.structure import abstract, facts, universes_for
from forkshare.proofs.transitions import PARAM_SORTS, arguments, effect, transition

TIMEOUT_MS = 5000
_PREFIX = {"proc": "proc", "sock": "sock", "conn": "conn", "slot": "slot"}


def check_freedom(fid: str) -> Record:
    """FOUND when freedom ``fid``'s witness is a run of the z3 transition relation from the z3
    initial state; MISSING, naming the first step z3 rejects, otherwise."""
    freedom = FREEDOMS[fid]
    last = freedom.witness.steps[-1][0]
    try:
        states = play(freedom.witness)
    except ValueError as error:
        return Record(Kind.FREEDOM, fid, last, "", Result.MISSING, 0.0, str(error))
    rejected, ms = _first_rejected(freedom, states)
    trace = _numbered(freedom, states)
    if rejected is not None:
        text = f"{freedom.title}: {rejected}\n{trace}"
        return Record(Kind.FREEDOM, fid, last, "", Result.MISSING, ms, text)
    headline = (
        f"{freedom.title}: {freedom.other_way}; z3 accepts every step from its initial state "
        f"({freedom.modelled_by}). Last state: {freedom.witness.observed}"
    )
    return Record(Kind.FREEDOM, fid, last, "", Result.FOUND, ms, f"{headline}\n{trace}")


def check_freedoms() -> list[Record]:
    """A record for every freedom, in the table's order."""
    return [check_freedom(fid) for fid in FREEDOMS]


def _first_rejected(freedom: Freedom, states: Sequence[System]) -> tuple[str | None, float]:
    """The first step of the run z3 rejects (None: none), and the slowest check's time.

    Each post-state shares with its pre-state the symbols the step does not modify (as in the
    consecution checks), and every state's facts are pinned on its own vocabulary: a fact the
    Python step changed but the z3 step leaves alone contradicts the pre-state's pin.
    """
    config = freedom.witness.config
    universes = universes_for(config, states)
    solver = Solver(TIMEOUT_MS, logic="QF_UF")
    slowest = 0.0
    with grounded(universes) as elements:
        pre = Vocab.named("@w0")
        solver.add(*[distinct(*terms) for terms in elements.values()], *static_axioms())
        solver.add(initial(pre), *closed_world(pre, elements))
        solver.add(*facts(abstract(config, states[0], universes), pre))
        for k, (name, args) in enumerate(freedom.witness.steps):
            step, post = _step(freedom, k, (name, args), pre)
            solver.add(step, *closed_world(post, elements))
            solver.add(*facts(abstract(config, states[k + 1], universes), post, statics=False))
            started = time.perf_counter()
            verdict = solver.check().verdict
            slowest = max(slowest, (time.perf_counter() - started) * 1000)
            if verdict != "sat":
                label = describe_step(name, args, ACTIONS[name].params)
                return f"step {k + 1}, {label}, is not a z3 step ({verdict})", slowest
            pre = post
    return None, slowest


def _step(freedom: Freedom, k: int, taken: Step, pre: Vocab) -> tuple[Formula, Vocab]:
    """Step ``k``, an action and its arguments, from ``pre``: its formula and the post-state
    (``pre`` with the symbols the action modifies replaced)."""
    config = freedom.witness.config
    name, args = taken
    local = Locals(f"w{k}!{name}!")
    zargs = arguments(name, local)
    step = effect(config, name, pre, zargs, local)
    post = pre.primed(step.updates, f"@w{k + 1}")
    parts = [transition(step, pre, post, local), *[one_of(t, sort) for t, sort in local.loose()]]
    for param, term, value in zip(ACTIONS[name].params, zargs, args, strict=True):
        sort = PARAM_SORTS[param]
        parts.append(term == element(sort, f"{_PREFIX[sort]}{value}"))
    return conj(*parts), post


def _numbered(freedom: Freedom, states: Sequence[System]) -> str:
    """``1. start_master() → master1{sock0} | sock0 q=[]``, one line per step."""
    lines = []
    for k, ((name, args), state) in enumerate(
        zip(freedom.witness.steps, states[1:], strict=True), 1
    ):
        label = describe_step(name, args, ACTIONS[name].params)
        lines.append(f"{k}. {label} → {describe_state(state)}")
    return "\n".join(lines)
