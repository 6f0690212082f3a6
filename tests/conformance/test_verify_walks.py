"""A random walk against a real target ends in a verdict, never in a Hypothesis traceback.

Hypothesis replays and extends walks it has seen; a real server may answer a replayed walk
differently, and Hypothesis then stops with a "flaky" error. Only that, with no failure inside,
is a divergence the verifier notes and goes on from; anything else is raised.
"""

from __future__ import annotations

from hypothesis.errors import FlakyFailure, FlakyStrategyDefinition

from forkshare.conformance.verify.errors import ClosureTooLargeError
from forkshare.conformance.verify.verify import is_divergence


def test_a_replay_that_draws_differently_is_a_divergence() -> None:
    assert is_divergence(FlakyStrategyDefinition("the second run drew more data"))


def test_a_flaky_closure_cut_is_a_divergence() -> None:
    group = FlakyFailure(
        "inconsistent", [ClosureTooLargeError("too many"), FlakyStrategyDefinition("x")]
    )
    assert is_divergence(group)


def test_a_flaky_error_of_ours_is_not_hidden() -> None:
    assert not is_divergence(FlakyFailure("inconsistent", [ValueError("a bug")]))
    assert not is_divergence(ValueError("a bug"))
