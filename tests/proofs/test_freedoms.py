"""Every freedom's witness is a run of the z3 transition relation, so the proofs are about a
specification that allows what correct servers do; and a run the encoding does not allow is
reported with the step it rejects."""

from __future__ import annotations

from dataclasses import replace

import pytest

from forkshare.model.freedoms import FREEDOMS, Witness, play
from forkshare.model.kernel import put_process
from forkshare.model.state import System
from forkshare.proofs import freedoms as proofs_freedoms
from forkshare.proofs.freedoms import check_freedom
from forkshare.proofs.report import Kind, Result


@pytest.mark.parametrize("fid", list(FREEDOMS))
def test_every_freedom_witness_is_a_run_of_the_encoding(fid: str) -> None:
    record = check_freedom(fid)
    assert record.kind is Kind.FREEDOM
    assert record.result is Result.FOUND, record.detail
    steps = FREEDOMS[fid].witness.steps
    lines = record.detail.splitlines()
    assert len(lines) == 1 + len(steps)
    assert lines[1].startswith("1. start_master()")
    assert record.action == steps[-1][0]


def test_a_state_no_step_of_the_encoding_reaches_is_rejected_at_its_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """F1's run, but the master lost its listener at the last step (a reap): no z3 step does
    that, and the record names the step."""

    def damaged(witness: Witness) -> tuple[System, ...]:
        states = play(witness)
        last = states[-1]
        master = last.process(1)
        assert master is not None
        assert master.fds
        return (*states[:-1], put_process(last, replace(master, fds=frozenset())))

    monkeypatch.setattr(proofs_freedoms, "play", damaged)
    record = check_freedom("F1")
    assert record.result is Result.MISSING
    assert not record.ok
    steps = len(FREEDOMS["F1"].witness.steps)
    assert f"step {steps}, reap(proc2), is not a z3 step" in record.detail


def test_a_witness_the_python_model_cannot_play_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    freedom = FREEDOMS["F2"]
    broken = replace(freedom.witness, steps=(("begin_graceful_exit", (2,)),))
    monkeypatch.setitem(FREEDOMS, "F2", replace(freedom, witness=broken))
    record = check_freedom("F2")
    assert record.result is Result.MISSING
    assert "cannot be played" in record.detail
