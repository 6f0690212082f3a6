"""Every freedom correct servers take (F1–F10, K19, K20) happens in the model: its witness trace
is enabled step by step, every invariant holds along it, and the explorer reaches its end."""

from __future__ import annotations

from dataclasses import replace

import pytest

from forkshare.model.explorer import reaches
from forkshare.model.freedoms import FREEDOMS, Freedom, play
from forkshare.model.invariants import violated


@pytest.mark.parametrize("freedom", FREEDOMS.values(), ids=list(FREEDOMS))
def test_each_freedom_is_taken_by_a_trace_that_breaks_no_invariant(freedom: Freedom) -> None:
    states = play(freedom.witness)
    assert freedom.witness.shows(states[-1]), freedom.witness.observed
    for state in states:
        assert violated(freedom.witness.config, state) == ()


@pytest.mark.parametrize("freedom", FREEDOMS.values(), ids=list(FREEDOMS))
def test_the_explorer_reaches_each_freedoms_witness(freedom: Freedom) -> None:
    states = play(freedom.witness)
    assert reaches(freedom.witness.config, states[-1])


def test_the_table_covers_every_freedom_of_the_domain() -> None:
    assert set(FREEDOMS) == {f"F{n}" for n in range(1, 11)} | {"K19", "K20"}


def test_a_witness_that_does_not_show_its_freedom_cannot_be_played() -> None:
    witness = FREEDOMS["F6"].witness
    pinned = replace(witness, config=replace(witness.config, defer_accept=False))
    with pytest.raises(ValueError, match="cannot be played"):
        play(pinned)
