"""Every verification condition stays in the decidable fragment (stratified EPR).

A change that leaves the fragment would make z3 answer ``unknown`` (or loop) on some future edit;
this test makes it fail loudly instead: after Skolemisation, the ∀∃ alternations and the function
symbols of each check must only go from one sort to a later one in an acyclic order.
"""

from __future__ import annotations

import pytest

from forkshare.model.actions import ACTIONS
from forkshare.proofs.bmc import initial
from forkshare.proofs.encoding import (
    Locals,
    Vocab,
    conj,
    exists,
    forall,
    is_acyclic,
    neg,
    sort_dependencies,
    var,
)
from forkshare.proofs.obligations import SAFE_TARGETS, Prover
from forkshare.proofs.progress import PROGRESS
from forkshare.proofs.transitions import arguments, effect, transition


def _edges_of(formulas: list[object]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for formula in formulas:
        found |= sort_dependencies(formula)
    return found


@pytest.mark.parametrize("target", SAFE_TARGETS, ids=lambda t: t.label)
def test_every_consecution_check_is_stratified(target: object) -> None:
    prover = Prover(target)  # type: ignore[arg-type]
    hypotheses = _edges_of(list(prover.at_pre.values()))
    for name in ACTIONS:
        local = Locals(f"{name}!")
        step = effect(prover.config, name, prover.pre, arguments(name, local), local)
        post = prover.pre.primed(step.updates, "'")
        base = hypotheses | sort_dependencies(transition(step, prover.pre, post, local))
        for goal, build in prover.goals.items():
            edges = base | sort_dependencies(neg(build(prover.config, post)))
            assert is_acyclic(edges), f"{target}: {name} / {goal}: {sorted(edges)}"


@pytest.mark.parametrize("target", SAFE_TARGETS, ids=lambda t: t.label)
def test_every_init_check_is_stratified(target: object) -> None:
    prover = Prover(target)  # type: ignore[arg-type]
    start = sort_dependencies(initial(prover.pre))
    for goal, formula in prover.at_pre.items():
        edges = start | sort_dependencies(neg(formula))
        assert is_acyclic(edges), f"{goal}: {sorted(edges)}"


@pytest.mark.parametrize("target", SAFE_TARGETS, ids=lambda t: t.label)
def test_every_progress_check_is_stratified(target: object) -> None:
    prover = Prover(target)  # type: ignore[arg-type]
    for fact in PROGRESS.values():
        if not fact.applies(prover.config):
            continue
        local = Locals("p!")
        premise, conclusion = fact.build(prover.config, prover.pre, local)
        edges = _edges_of([*prover.assumed, premise, neg(conclusion)])
        assert is_acyclic(edges), f"{fact.name}: {sorted(edges)}"


def test_the_check_catches_a_cycle_between_sorts() -> None:
    v = Vocab.named("")
    p, s = var("proc", "x_p"), var("sock", "x_s")
    each_process_holds_a_socket = forall([p], exists([s], v.holds(p, s)))
    each_socket_has_a_holder = forall([s], exists([p], v.holds(p, s)))
    edges = sort_dependencies(conj(each_process_holds_a_socket, each_socket_has_a_holder))
    assert ("proc", "sock") in edges
    assert ("sock", "proc") in edges
    assert not is_acyclic(edges)


def test_a_negated_universal_counts_as_an_existential() -> None:
    v = Vocab.named("")
    p, s = var("proc", "y_p"), var("sock", "y_s")
    formula = forall([p], neg(forall([s], v.holds(p, s))))
    assert sort_dependencies(formula) == {("proc", "sock")}
