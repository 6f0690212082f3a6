"""The monitors say from outside what the invariants say inside: one per invariant, and on every
explored transition a monitor flags exactly the steps that break its invariant."""

from __future__ import annotations

from collections import deque

import pytest

from forkshare.model.actions import ACTIONS
from forkshare.model.config import Bounds, Config, Mode, ParentDeath
from forkshare.model.explorer import initial_state
from forkshare.model.invariants import INVARIANTS
from forkshare.model.monitors import MONITORS, Moment, first_broken
from forkshare.model.observation import observe
from forkshare.model.state import System
from forkshare.model.table import Kind, candidates
from forkshare.model.variants import VARIANTS

LIFE = Bounds(connections=1, kills=1, stops=1, reloads=1, shutdowns=1, master_kills=1)
QUEUES = Bounds(connections=2, kills=1, stops=1, reloads=0, shutdowns=1, master_kills=0)


def disagreements(config: Config, max_states: int) -> dict[str, str]:
    """Walk the model breadth first (concrete states, one history each) and compare, on every
    transition, each monitor with its invariant; the first disagreement per invariant."""
    root = initial_state()
    histories: dict[System, tuple[Moment, ...]] = {root: (Moment(None, observe(root)),)}
    frontier = deque([root])
    found: dict[str, str] = {}
    while frontier and len(histories) < max_states:
        state = frontier.popleft()
        table = candidates(config, state)
        for name, action in ACTIONS.items():
            for args in action.arguments(config, state, table):
                for succ in action.successors(config, state, args):
                    step = (name, args) if action.kind is Kind.ENVIRONMENT else None
                    history = (*histories[state], Moment(step, observe(succ)))
                    _compare(config, state, succ, history, found)
                    if succ not in histories:
                        histories[succ] = history
                        frontier.append(succ)
    return found


def _compare(
    config: Config,
    before: System,
    after: System,
    history: tuple[Moment, ...],
    found: dict[str, str],
) -> None:
    for name, monitor in MONITORS.items():
        invariant = INVARIANTS[name]
        if monitor.check is None or name in found or not invariant.applies(config):
            continue
        breaks = invariant.holds(config, before) and not invariant.holds(config, after)
        flagged = monitor.check(config, history) is not None
        if breaks != flagged:
            steps = [m.step for m in history if m.step is not None]
            found[name] = f"invariant breaks={breaks}, monitor flags={flagged} after {steps}"


def test_every_invariant_has_a_monitor_entry_in_the_same_order() -> None:
    assert list(MONITORS) == list(INVARIANTS)


def test_an_invariant_nobody_can_see_says_why() -> None:
    for monitor in MONITORS.values():
        assert (monitor.check is None) == bool(monitor.hidden), monitor.name


SAFE = [
    pytest.param(Config(mode=mode, workers=1, bounds=bounds), id=f"{mode.value}-{label}")
    for mode in Mode
    for label, bounds in (("life", LIFE), ("queues", QUEUES))
]
OTHER = [
    pytest.param(
        Config(mode=Mode.EXCLUSIVE, workers=1, bounds=LIFE, parent_death=ParentDeath.ORPHANS_SERVE),
        id="orphans-serve",
    ),
    pytest.param(
        Config(mode=Mode.BLOCKING, workers=1, bounds=LIFE, parent_death_bound=5.0),
        id="polling-parent",
    ),
    pytest.param(
        Config(
            mode=Mode.EXCLUSIVE,
            workers=1,
            bounds=Bounds(
                connections=1, kills=0, reloads=0, shutdowns=1, master_kills=1, upgrades=1
            ),
        ),
        id="upgrade",
    ),
]
UNSAFE = [pytest.param(v.apply(Config(bounds=v.bounds)), id=name) for name, v in VARIANTS.items()]


@pytest.mark.parametrize("config", [*SAFE, *OTHER, *UNSAFE])
def test_each_monitor_flags_exactly_the_steps_that_break_its_invariant(config: Config) -> None:
    assert disagreements(config, max_states=6000) == {}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_each_unsafe_design_is_named_somewhere_by_the_monitor_of_its_invariant(name: str) -> None:
    variant = VARIANTS[name]
    if MONITORS[variant.expected].check is None:
        pytest.skip(f"{variant.expected} is not observable: {MONITORS[variant.expected].hidden}")
    config = variant.apply(Config(bounds=variant.bounds))
    named = _first_named(config)
    assert variant.expected in named


def _first_named(config: Config) -> set[str]:
    root = initial_state()
    histories: dict[System, tuple[Moment, ...]] = {root: (Moment(None, observe(root)),)}
    frontier = deque([root])
    named: set[str] = set()
    while frontier and len(histories) < 20000:
        state = frontier.popleft()
        for name, action in ACTIONS.items():
            for args in action.arguments(config, state):
                for succ in action.successors(config, state, args):
                    step = (name, args) if action.kind is Kind.ENVIRONMENT else None
                    history = (*histories[state], Moment(step, observe(succ)))
                    broken = first_broken(config, history)
                    if broken is not None:
                        named.add(broken[0])
                    if succ not in histories:
                        histories[succ] = history
                        frontier.append(succ)
    return named
