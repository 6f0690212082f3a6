"""The model's Hypothesis state machine (pure-model backend): invariants hold after every step of
every safe mode; every unsafe variant is caught; and how much of the explorer's state space a
default run reaches (model coverage)."""

from __future__ import annotations

from typing import cast

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test

from forkshare.conformance.verify.coverage import Coverage
from forkshare.conformance.verify.machine import build_machine
from forkshare.model.compact_search import search
from forkshare.model.compact_symmetry import canonical_of
from forkshare.model.config import Bounds, Config, Mode
from forkshare.model.explorer import explore
from forkshare.model.state import System
from forkshare.model.variants import VARIANTS

BOUNDS = Bounds(connections=2, kills=1, stops=1, reloads=1, shutdowns=1, upgrades=1)


@pytest.mark.parametrize("mode", list(Mode))
def test_random_walks_keep_every_invariant(mode: Mode) -> None:
    machine = build_machine(Config(mode=mode, workers=2, bounds=BOUNDS))
    run_state_machine_as_test(machine, settings=settings(stateful_step_count=40))


WALKABLE = 6
"""Random walks are asked to find counterexamples of at most this many steps; a longer one needs
its steps in one order among many (``graceful-drops-requests``: accept, send, stop, act on it,
exit, each before a competing step) and is left to the explorer and the verifier's scenarios."""


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_random_walks_catch_every_unsafe_variant_with_a_short_counterexample(name: str) -> None:
    variant = VARIANTS[name]
    # Pinning the freedoms only removes states, so each walk is likelier to reach the design's
    # counterexample.
    pinned = variant.apply(
        Config(
            workers=1, bounds=variant.bounds, defer_accept=False, workers_receive_listeners=False
        )
    )
    shortest = explore(pinned).violations[variant.expected].trace
    if len(shortest) > WALKABLE:
        pytest.skip(f"{name}'s shortest counterexample takes {len(shortest)} steps")
    machine = build_machine(pinned, checked=[variant.expected])
    walks = settings(
        max_examples=600,
        stateful_step_count=30,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    with pytest.raises((AssertionError, Flaky), match=variant.expected):
        run_state_machine_as_test(machine, settings=walks)


def test_model_coverage_of_a_default_run_is_reported() -> None:
    """Every state a default Hypothesis run visits is one the explorer reaches; the share is printed."""
    config = Config(mode=Mode.EXCLUSIVE, workers=2, bounds=Bounds(connections=2, kills=1))
    reachable = search(config, keep_states=True).reachable
    assert reachable is not None
    visited: set[System] = set()
    machine = build_machine(config, visited=visited)
    run_state_machine_as_test(machine, settings=settings(max_examples=100, stateful_step_count=30))
    # The explorer's states are compact; each visited state is compared in that form.
    assert {canonical_of(state) for state in visited} <= set(reachable)
    share = len(visited) / len(reachable)
    print(f"model coverage: {len(visited)} of {len(reachable)} states ({share:.1%})")
    # The figure is reported (and recorded by `make bench`); the test guards against a machine
    # that stops exploring: a walk of 30 steps alone passes through more than 10 distinct states.
    assert len(visited) > 10


class _GoneTargetBackend:
    """A real-target stand-in whose every signalled process has already exited (ESRCH)."""

    drives_internal = False

    def __init__(self, config: Config) -> None:
        self.config = config
        self.steps: list[tuple[str, tuple[int, ...]]] = []
        self.coverage = Coverage()
        self.failed = False

    def perform(self, step: object, states: object) -> bool:
        return False  # no real process plays it

    def allowed(self, candidates: frozenset[System]) -> frozenset[System]:
        return candidates

    def drain(self) -> None:
        """Nothing is timed."""

    def close(self) -> None:
        """Nothing to stop."""


def test_a_signal_that_reaches_no_process_keeps_only_states_where_it_had_exited() -> None:
    from hypothesis import strategies as st

    from forkshare.conformance.verify.machine import NonconformanceError
    from forkshare.model.actions import ACTIONS
    from tests.model.test_kernel import run

    config = Config(mode=Mode.EXCLUSIVE, workers=1, bounds=Bounds(kills=1, stops=1))
    alive = run(config, ("start_master", ()), ("spawn_worker", (1, 0)))
    exited = run(config, ("start_master", ()), ("spawn_worker", (1, 0)), ("kill_worker", (2,)))

    class Fixed:
        def draw(self, strategy: object) -> tuple[int, ...]:
            return (2,)

    machine = build_machine(config, _GoneTargetBackend)()
    machine.states = frozenset({alive, exited})
    machine.take(ACTIONS["stop_worker"], cast("st.DataObject", Fixed()))
    assert machine.states == frozenset({exited})

    machine.states = frozenset({alive})
    with pytest.raises(NonconformanceError):
        machine.take(ACTIONS["stop_worker"], cast("st.DataObject", Fixed()))
