"""Init, consecution and progress: proved for every safe mode, and able to fail."""

from __future__ import annotations

import functools

import pytest

from forkshare.model.config import Config, Mode, ParentDeath
from forkshare.proofs import issues
from forkshare.proofs.issues import ModelIssue
from forkshare.proofs.lemmas import LEMMAS, Lemma
from forkshare.proofs.obligations import SAFE_TARGETS, Prover, Target
from forkshare.proofs.report import Kind, Result


@pytest.mark.parametrize("target", SAFE_TARGETS, ids=lambda t: t.label)
def test_every_invariant_is_inductive_in_every_safe_mode(target: Target) -> None:
    prover = Prover(target)
    records = prover.check_init() + prover.check_transitions() + prover.check_progress()
    bad = [r for r in records if not r.ok]
    assert not bad, "\n".join(f"{r.kind} {r.action} {r.invariant}: {r.detail}" for r in bad)
    assert {r.kind for r in records} >= {Kind.INIT, Kind.CONSECUTION}


PARENT_DEATH = [
    Target(f"{mode.value}-{name}", Config(mode=mode, **changes))
    for mode in Mode
    for name, changes in (
        ("orphans-serve", {"parent_death": ParentDeath.ORPHANS_SERVE}),
        ("orphans-notice-late", {"parent_death_bound": 15.0}),
    )
]
"""Both parent-death policies in every mode (``forkshare prove`` runs them in mutex mode only,
for time)."""


@pytest.mark.slow
@pytest.mark.parametrize("target", PARENT_DEATH, ids=lambda t: t.label)
def test_every_invariant_is_inductive_whatever_orphans_do(target: Target) -> None:
    prover = Prover(target)
    records = prover.check_init() + prover.check_transitions() + prover.check_progress()
    bad = [r for r in records if not r.ok]
    assert not bad, "\n".join(f"{r.kind} {r.action} {r.invariant}: {r.detail}" for r in bad)


def test_a_listed_model_issue_turns_its_failures_into_known_issues(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The machinery for defects of the model: a listed goal is not assumed for the others, and
    its own failures are reported as known issues, still with their counterexample."""
    issue = ModelIssue("example", frozenset({Mode.EXCLUSIVE}), "type_ok", 3, "why", "fix")
    monkeypatch.setattr(issues, "ISSUES", (issue,))
    weakened = {n: lemma for n, lemma in LEMMAS.items() if n != "owners_are_alive"}
    target = next(t for t in SAFE_TARGETS if t.label == "exclusive")
    records = Prover(target, lemmas=weakened).check_transitions(["reap"])
    (known,) = [r for r in records if r.result is Result.KNOWN_ISSUE]
    assert known.invariant == "type_ok"
    assert known.ok
    assert known.detail.startswith("counterexample to induction")


def test_a_check_that_runs_out_of_time_is_asked_again_before_it_counts_as_unknown() -> None:
    target = next(t for t in SAFE_TARGETS if t.label == "exclusive")
    hasty = Prover(target, timeout_ms=1, retry_timeout_ms=None).check_transitions(["fast_shutdown"])
    assert Result.UNKNOWN in {r.result for r in hasty}
    retried = Prover(target, timeout_ms=1, retry_timeout_ms=5000).check_transitions(
        ["fast_shutdown"]
    )
    assert {r.result for r in retried} == {Result.PROVED}


def test_weakening_a_strengthening_lemma_breaks_the_proof_with_a_decoded_counterexample() -> None:
    weakened = {n: lemma for n, lemma in LEMMAS.items() if n != "owners_are_alive"}
    target = next(t for t in SAFE_TARGETS if t.label == "exclusive")
    records = Prover(target, lemmas=weakened).check_transitions(["reap"])
    failed = [r for r in records if r.result is Result.FAILED]
    assert [r.invariant for r in failed] == ["type_ok"]
    detail = failed[0].detail
    assert detail.startswith("counterexample to induction: type_ok is not preserved by reap(")
    before, after = detail.splitlines()[1:]
    assert before.strip().startswith("before:")
    assert "accepted@" in before
    assert after.strip().startswith("after:")


NECESSITY_TIMEOUT_MS = 300
"""Without a needed lemma a check fails or runs out of time; either way it is not proved, so
a short timeout decides as well as the suite's and keeps the test fast."""


def _unproved(target: Target, lemmas: dict[str, Lemma]) -> set[tuple[str, str]]:
    prover = Prover(target, lemmas=lemmas, timeout_ms=NECESSITY_TIMEOUT_MS, retry_timeout_ms=None)
    records = prover.check_transitions() + prover.check_progress()
    return {(r.action, r.invariant) for r in records if r.result is not Result.PROVED}


@functools.cache
def _unproved_with_every_lemma(label: str) -> frozenset[tuple[str, str]]:
    target = next(t for t in SAFE_TARGETS if t.label == label)
    return frozenset(_unproved(target, dict(LEMMAS)))


def _likely_first(target: Target) -> bool:
    """Reuseport and mutex first: the lemmas about sockets shared by masters and workers show
    there, and so do the mutex's (the order only makes the test faster)."""
    return target.config.mode not in (Mode.REUSEPORT, Mode.MUTEX)


@pytest.mark.parametrize("name", list(LEMMAS))
def test_every_lemma_is_needed(name: str) -> None:
    """Dropping any lemma leaves some obligation unproved (failed, or a known issue that then
    shows in more actions than its own mechanism)."""
    weakened = {n: lemma for n, lemma in LEMMAS.items() if n != name}
    for target in sorted(SAFE_TARGETS, key=_likely_first):
        if LEMMAS[name].applies(target.config):
            extra = _unproved(target, weakened) - _unproved_with_every_lemma(target.label)
            if extra:
                return
    pytest.fail(f"{name} is not needed by any obligation: drop it")


def test_an_invariant_that_is_not_inductive_without_its_lemma_names_the_lemma_it_needs() -> None:
    weakened = {
        n: lemma for n, lemma in LEMMAS.items() if n != "commandable_master_holds_every_listener"
    }
    target = next(t for t in SAFE_TARGETS if t.label == "exclusive")
    records = Prover(target, lemmas=weakened).check_transitions(["kill_worker"])
    failing = {r.invariant for r in records if r.result is Result.FAILED}
    assert failing & {"listeners_keep_identity", "no_queued_connection_lost"}


def test_the_initial_state_is_decoded_when_a_goal_fails_there() -> None:
    from forkshare.proofs.encoding import boolean
    from forkshare.proofs.lemmas import Lemma

    false = Lemma("nothing_holds", "a lemma that is false everywhere", lambda c, v: boolean(False))
    target = next(t for t in SAFE_TARGETS if t.label == "exclusive")
    records = Prover(target, lemmas={"nothing_holds": false}).check_init()
    failed = [r for r in records if r.result is Result.FAILED]
    assert [r.invariant for r in failed] == ["nothing_holds"]
    assert "no process | no socket" in failed[0].detail
