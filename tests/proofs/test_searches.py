"""Every unsafe variant refuted, every action witnessed, every model issue confirmed — by traces
that z3 finds and the Python model replays."""

from __future__ import annotations

from dataclasses import replace

import pytest

from forkshare.model.actions import ACTIONS
from forkshare.model.config import Config, Mode
from forkshare.model.invariants import INVARIANTS
from forkshare.model.variants import VARIANTS
from forkshare.proofs.bmc import search
from forkshare.proofs.claims import CLAIMS
from forkshare.proofs.encoding import Formula, Vocab, neg
from forkshare.proofs.issues import ISSUES, ModelIssue
from forkshare.proofs.report import Result
from forkshare.proofs.searches import confirm_issue, refute_variant, witness_actions


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_unsafe_variant_is_refuted_by_a_replayed_counterexample(name: str) -> None:
    record = refute_variant(name)
    assert record.result is Result.FOUND, record.detail
    assert record.invariant == VARIANTS[name].expected
    lines = record.detail.splitlines()
    assert lines[1].startswith("1. start_master()")


def test_the_refutation_is_a_shortest_trace_that_fails_in_python_too() -> None:
    variant = VARIANTS["no-respawn"]
    config = variant.apply(Config())
    trace = search(
        config, lambda c, v: neg(CLAIMS[variant.expected](c, v)), max_depth=6, timeout_ms=5000
    )
    assert trace is not None
    actions = [s.action for s in trace.steps]
    assert actions == ["start_master", "spawn_worker", "kill_worker", "reap"]
    assert not INVARIANTS[variant.expected].holds(config, trace.steps[-1].state)


def test_a_search_under_budgets_never_takes_an_action_whose_budget_is_0() -> None:
    """The variant's budgets prune the search: without a kill, no-respawn keeps its consumer."""
    variant = VARIANTS["no-respawn"]
    config = variant.apply(Config(workers=1))

    def goal(config: Config, v: Vocab) -> Formula:
        return neg(CLAIMS[variant.expected](config, v))

    no_kill = replace(variant.bounds, kills=0)
    assert search(config, goal, max_depth=5, timeout_ms=5000, budgets=variant.bounds) is not None
    assert search(config, goal, max_depth=5, timeout_ms=5000, budgets=no_kill) is None


def test_a_safe_design_has_no_counterexample_within_the_bound() -> None:
    config = Config()

    def goal(config: Config, v: Vocab) -> Formula:
        return neg(CLAIMS["no_queued_connection_lost"](config, v))

    assert search(config, goal, max_depth=4, timeout_ms=5000) is None


def test_every_action_has_a_witness_that_replays() -> None:
    records = witness_actions()
    assert sorted(r.action for r in records) == sorted(ACTIONS)
    missing = [r.action for r in records if r.result is not Result.FOUND]
    assert not missing
    for record in records:
        assert record.detail.splitlines()[-1].split(". ", 1)[1].startswith(record.action)


@pytest.mark.parametrize("issue", ISSUES, ids=lambda i: i.name)
def test_every_known_model_issue_is_reachable_in_the_python_model(issue: ModelIssue) -> None:
    record = confirm_issue(issue)
    assert record.result is Result.FOUND, record.detail


def test_a_listed_issue_the_model_no_longer_has_is_reported_resolved() -> None:
    fixed = ModelIssue("fixed", frozenset({Mode.MUTEX}), "mutex_holder_is_alive", 5, "", "")
    record = confirm_issue(fixed)
    assert record.result is Result.RESOLVED
    assert not record.ok
    assert "remove it" in record.detail
