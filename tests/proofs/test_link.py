"""The link: the z3 formulas say the same as the Python model on concrete states.

Without this the proofs would be about a machine nobody runs. States are drawn by random walks
through the model's own action table; for the last step, the z3 transition formula must accept
every real successor and reject the successor with any one fact changed; every z3 invariant must
have the truth value of the Python predicate, on reachable states and on damaged ones.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from forkshare.model.actions import ACTIONS
from forkshare.model.config import Config, Mode
from forkshare.model.explorer import initial_state
from forkshare.model.invariants import INVARIANTS
from forkshare.model.state import Fate, Phase, Role, Shutdown, System
from forkshare.proofs.errors import NotRepresentableError
from forkshare.proofs.lemmas import LEMMAS
from forkshare.proofs.structure import Structure, abstract, universes_for
from tests.proofs.link import TransitionCheck, claim_agrees, flipped
from tests.proofs.walks import (
    WALK_BOUNDS,
    Move,
    configurations,
    safe_configurations,
    sample_moves,
    walk,
)

CONFIGS = configurations()
CHOICES = st.lists(st.integers(0, 10**6), min_size=1, max_size=14)
SAFE = safe_configurations()


def _defined(structure: Structure) -> frozenset[object]:
    present = {n for sort in ("proc", "sock", "conn") for n in structure.present(sort)}
    rows = set()
    for name, ext in structure.facts.items():
        for row in ext:
            owner = row[1] if name == "in_queue" else (row[0] if row else None)
            if owner is None or owner in present or not owner.startswith(("proc", "sock", "conn")):
                rows.add((name, row))
    return frozenset(rows)


def _perturbations(
    config: Config, structure: Structure
) -> list[tuple[str, tuple[str, ...], str | None]]:
    """Every single-fact change of the facts the structure defines, except the one the encoding
    deliberately leaves open: in poll mode, that an arrival woke several workers (see
    ``test_poll_herd_is_implied_one_way``)."""
    procs, socks, conns = (structure.present(s) for s in ("proc", "sock", "conn"))
    found: list[tuple[str, tuple[str, ...], str | None]] = []
    unary = {
        "p_in": procs,
        "master": procs,
        "stopped": procs,
        "holds_mutex": procs,
        "helper": procs,
        "quit": procs,
        "terminate": procs,
        "orphan_accepted": procs,
        "master_killed": procs,
        "listening": socks,
        "closed_early": socks,
        "reuseport": socks,
        "s_by_master": socks,
        "requested": conns,
        "accepted_once": conns,
        "accepted_twice": conns,
        "c_by_master": conns,
        "held_back": conns,
        **({} if config.mode is Mode.POLL else {"woke_many": conns}),
    }
    for name, owners in unary.items():
        found += [(name, (o,), None) for o in owners]
    found += [("holds", (p, s), None) for p in procs for s in structure.universes["sock"]]
    found += [("in_queue", (c, s), None) for s in socks for c in structure.universes["conn"]]
    found += [("ahead", (c, d), None) for c in conns for d in structure.universes["conn"]]
    found += [("arrived_on", (c, s), None) for c in conns for s in structure.universes["sock"]]
    found += [("abandoned", (p, i), None) for p in procs for i in structure.universes["slot"]]
    found += [("owns", (c, p), None) for c in conns for p in structure.universes["proc"]]
    found += [("parent", (p, q), None) for p in procs for q in structure.universes["proc"]]
    found += [
        ("fate", (c,), f.value)
        for c in conns
        for f in Fate
        if f.value != structure.value("fate", c)
    ]
    found += [
        ("phase", (p,), ph.value)
        for p in procs
        for ph in Phase
        if ph.value != structure.value("phase", p)
    ]
    found += [
        ("shutdown", (p,), sd.value)
        for p in procs
        for sd in Shutdown
        if sd.value != structure.value("shutdown", p)
    ]
    found += [("locked", (), None), ("shut_down_once", (), None)]
    return found


def _check_transition(config: Config, pre: System, move: Move, picks: list[int] | None) -> None:
    """The z3 transition accepts every real successor of the move's action and arguments, and
    rejects the move's successor with one fact changed (those ``picks`` chooses, or all)."""
    name, args, succ = move
    successors = list(ACTIONS[name].successors(config, pre, args))
    check = TransitionCheck(config, pre, name, args, successors)
    for real in successors:
        assert check.accepts(check.structure(real)), f"{name}{args} rejects a real successor"
    real_views = {_defined(check.structure(s)) for s in successors}
    target = check.structure(succ)
    candidates = _perturbations(config, target)
    chosen = candidates if picks is None else [candidates[k % len(candidates)] for k in picks]
    for symbol, row, value in chosen:
        changed = flipped(target, symbol, row, value)
        if _defined(changed) in real_views:
            continue
        accepted = check.accepts_change(target, changed, symbol)
        assert not accepted, f"{name}{args} accepts {symbol}{row}→{value}"


@given(
    config=st.sampled_from(CONFIGS),
    choices=CHOICES,
    picks=st.lists(st.integers(0, 10**6), max_size=12),
)
def test_transition_formula_accepts_real_successors_and_rejects_perturbed_ones(
    config: Config, choices: list[int], picks: list[int]
) -> None:
    pre, move = walk(config, choices)
    assume(move is not None)
    assert move is not None
    _check_transition(config, pre, move, picks)


@pytest.mark.parametrize("name", list(ACTIONS))
def test_every_action_is_linked_on_reachable_states_with_every_perturbation(name: str) -> None:
    """Whatever Hypothesis draws, every action of the table (the freedoms' steps included) is
    checked on a shallow and on a rich reachable state, against every one-fact change of its
    successor."""
    samples = sample_moves()
    assert name in samples, f"no seeded walk takes {name}: widen sample_moves"
    for config, pre, move in samples[name]:
        _check_transition(config, pre, move, None)


def _damage(state: System, which: int, where: int) -> System:
    """One of a few small edits a buggy model could make (most break some invariant)."""
    procs, conns, lsts = state.processes, state.connections, state.listeners
    edits = []
    if conns:
        c = conns[where % len(conns)]
        edits += [
            lambda: replace(
                state, connections=tuple(replace(x, accepts=2) if x is c else x for x in conns)
            ),
            lambda: replace(
                state, connections=tuple(replace(x, wakeups=3) if x is c else x for x in conns)
            ),
            lambda: replace(
                state,
                connections=tuple(replace(x, fate=Fate.ABORTED) if x is c else x for x in conns),
            ),
            lambda: replace(
                state,
                connections=tuple(
                    replace(x, by_master=not x.by_master) if x is c else x for x in conns
                ),
            ),
            lambda: replace(
                state,
                connections=tuple(replace(x, fate=Fate.ABANDONED) if x is c else x for x in conns),
            ),
            lambda: replace(
                state,
                connections=tuple(replace(x, fate=Fate.DEFERRED) if x is c else x for x in conns),
            ),
        ]
    if procs:
        p = procs[where % len(procs)]
        edits += [
            lambda: replace(
                state, processes=tuple(replace(x, holds_mutex=True) if x is p else x for x in procs)
            ),
            lambda: replace(
                state,
                processes=tuple(replace(x, orphan_accepts=1) if x is p else x for x in procs),
            ),
            lambda: replace(
                state, processes=tuple(replace(x, role=Role.HELPER) if x is p else x for x in procs)
            ),
            lambda: replace(
                state, processes=tuple(replace(x, phase=Phase.DEAD) if x is p else x for x in procs)
            ),
            lambda: replace(state, mutex=p.pid + 7),
            lambda: replace(state, processes=tuple(x for x in procs if x is not p)),
        ]
    if lsts:
        lst = lsts[where % len(lsts)]
        edits += [
            lambda: replace(
                state,
                listeners=tuple(
                    replace(x, listening=not x.listening) if x is lst else x for x in lsts
                ),
            ),
            lambda: replace(
                state,
                listeners=tuple(replace(x, closed_early=True) if x is lst else x for x in lsts),
            ),
        ]
    if not edits:
        return state
    return edits[which % len(edits)]()


@given(
    config=st.sampled_from(CONFIGS),
    choices=CHOICES,
    damage=st.none() | st.tuples(st.integers(0, 99), st.integers(0, 99)),
)
def test_invariant_formulas_agree_with_the_python_predicates(
    config: Config, choices: list[int], damage: tuple[int, int] | None
) -> None:
    pre, move = walk(config, choices)
    state = pre if move is None else move[2]
    if damage is not None:
        state = _damage(state, *damage)
    try:
        abstract(config, state, universes_for(config, [state]))
    except NotRepresentableError:
        assume(False)
    for name, invariant in INVARIANTS.items():
        expected = invariant.holds(config, state)
        assert claim_agrees(config, state, name, expected), f"{name}: Python says {expected}"


@given(config=st.sampled_from(SAFE), choices=CHOICES)
def test_the_lemmas_hold_in_the_states_the_model_reaches(
    config: Config, choices: list[int]
) -> None:
    pre, move = walk(config, choices)
    state = pre if move is None else move[2]
    for name, lemma in LEMMAS.items():
        if lemma.applies(config):
            assert claim_agrees(config, state, name, True), name


def _poll_accept(waiters: int) -> tuple[TransitionCheck, Structure]:
    config = Config(mode=Mode.POLL, workers=waiters, bounds=WALK_BOUNDS)
    state = initial_state()
    steps = [("start_master", ()), *[("spawn_worker", (1, k)) for k in range(waiters)]]
    for name, args in [*steps, ("connect", ())]:
        state = ACTIONS[name].successors(config, state, args)[0]
    (succ,) = ACTIONS["accept"].successors(config, state, (2, 0))
    check = TransitionCheck(config, state, "accept", (2, 0), [succ])
    return check, check.structure(succ)


def test_poll_herd_is_implied_one_way() -> None:
    """The one fact the encoding leaves open (transitions._herd): in poll mode a herd may be
    recorded only when another worker waited, but its absence is not forced."""
    check, herd = _poll_accept(waiters=2)
    assert herd.holds("woke_many", "conn0")
    assert check.accepts(herd)
    assert check.accepts(flipped(herd, "woke_many", ("conn0",), None))
    check, alone = _poll_accept(waiters=1)
    assert not alone.holds("woke_many", "conn0")
    assert not check.accepts(flipped(alone, "woke_many", ("conn0",), None))
