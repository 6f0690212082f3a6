"""Concrete model states for the tests: random walks through the Python model's action table."""

from __future__ import annotations

from dataclasses import replace

from forkshare.model.actions import ACTIONS
from forkshare.model.config import Bounds, Config, Mode, ParentDeath
from forkshare.model.explorer import initial_state
from forkshare.model.state import System
from forkshare.model.variants import VARIANTS

WALK_BOUNDS = Bounds(
    connections=3,
    starts=3,
    kills=3,
    master_kills=2,
    stops=2,
    reloads=2,
    upgrades=2,
    shutdowns=2,
)
"""Budgets large enough to reach every kind of state, small enough to keep universes tiny."""

Move = tuple[str, tuple[int, ...], System]


def configurations() -> list[Config]:
    """Safe configurations of every mode and every unsafe variant, in a few shapes."""
    found = []
    for mode in Mode:
        for workers, backlog, death in (
            (1, 1, ParentDeath.WORKERS_EXIT),
            (2, 0, ParentDeath.ORPHANS_SERVE),
        ):
            found.append(
                Config(
                    mode=mode,
                    workers=workers,
                    backlog=backlog,
                    parent_death=death,
                    bounds=WALK_BOUNDS,
                )
            )
    for variant in VARIANTS.values():
        found.append(variant.apply(Config(workers=1, bounds=WALK_BOUNDS)))
    own_clone = Config(mode=Mode.REUSEPORT, workers=2, workers_keep_all_clones=False)
    found.append(replace(own_clone, bounds=WALK_BOUNDS))
    keeps_unused = Config(mode=Mode.MUTEX, workers=1, quit_closes_unused=False)
    found.append(replace(keeps_unused, bounds=WALK_BOUNDS))
    return found


def moves(config: Config, state: System) -> list[Move]:
    """Every enabled (action, arguments, successor) from ``state``."""
    return [
        (name, args, succ)
        for name, action in ACTIONS.items()
        for args in action.arguments(config, state)
        for succ in action.successors(config, state, args)
    ]


def walk(config: Config, choices: list[int]) -> tuple[System, Move | None]:
    """Follow ``choices`` (indices into the enabled moves) from the initial state; returns the
    state before the last move and the last move (None when nothing was ever enabled)."""
    pre, last = initial_state(), None
    for choice in choices:
        here = pre if last is None else last[2]
        options = moves(config, here)
        if not options:
            break
        pre, last = here, options[choice % len(options)]
    return pre, last


def unbounded(config: Config) -> Config:
    """``config`` with budgets that never run out (the proofs have none)."""
    return replace(config, bounds=Bounds(99, 99, 99, 99, 99, 99, 99, 99))
