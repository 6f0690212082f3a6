"""Concrete model states for the tests: random walks through the Python model's action table."""

from __future__ import annotations

import functools
from dataclasses import replace

from forkshare.model.actions import ACTIONS
from forkshare.model.config import Bounds, Config, Mode, ParentDeath
from forkshare.model.explorer import initial_state
from forkshare.model.state import System
from forkshare.model.table import Param
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
    helpers=1,
)
"""Budgets large enough to reach every kind of state, small enough to keep universes tiny."""

Move = tuple[str, tuple[int, ...], System]


def configurations() -> list[Config]:
    """Every safe configuration of :func:`safe_configurations`, and every unsafe variant."""
    variants = [v.apply(Config(workers=1, bounds=WALK_BOUNDS)) for v in VARIANTS.values()]
    return [*safe_configurations(), *variants]


def safe_configurations() -> list[Config]:
    """Safe configurations of every mode in a few shapes, and every pin of every freedom
    (``defer_accept``, ``workers_receive_listeners``, the parent-death policy and its bound,
    the reuseport clones a worker keeps)."""
    found = []
    for mode in Mode:
        for workers, backlog, death, bound in (
            (1, 1, ParentDeath.WORKERS_EXIT, 0.0),
            (2, 0, ParentDeath.ORPHANS_SERVE, 0.0),
            (1, 0, ParentDeath.WORKERS_EXIT, 15.0),
        ):
            found.append(
                Config(
                    mode=mode,
                    workers=workers,
                    backlog=backlog,
                    parent_death=death,
                    parent_death_bound=bound,
                    bounds=WALK_BOUNDS,
                )
            )
    for pinned in (True, False):
        found.append(
            Config(
                mode=Mode.EXCLUSIVE,
                workers=1,
                defer_accept=pinned,
                workers_receive_listeners=pinned,
                bounds=WALK_BOUNDS,
            )
        )
    own_clone = Config(mode=Mode.REUSEPORT, workers=2, workers_keep_all_clones=False)
    found.append(replace(own_clone, bounds=WALK_BOUNDS))
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


def walk_moves(config: Config, choices: list[int]) -> list[tuple[System, Move]]:
    """Every (pre-state, move) of the walk that follows ``choices`` from the initial state."""
    found: list[tuple[System, Move]] = []
    here = initial_state()
    for choice in choices:
        options = moves(config, here)
        if not options:
            break
        move = options[choice % len(options)]
        found.append((here, move))
        here = move[2]
    return found


def richness(state: System) -> int:
    """How much a pre-state can exercise a step: queued and held-back connections (the queue
    order, K19), processes and sockets."""
    queued = sum(len(lst.queue) for lst in state.listeners)
    waiting = sum(1 for c in state.connections if c.fate.value == "deferred")
    return 4 * queued + 3 * waiting + len(state.processes) + len(state.listeners)


Sample = tuple[Config, System, Move]


def shape(pre: System, move: Move) -> tuple[object, ...]:
    """What kind of step a move is: its action, what its arguments are (a connection's fate
    and whether it was held back, a process's role, phase and whether it owns one or more
    connections) and how the fates of connections
    change, e.g. a request sent on a queued connection and one sent on a connection silently
    dropped while held back (K19), or a connection that arrives held back and one that is
    queued."""
    name, args, succ = move
    before = {c.cid: (c.fate, c.held_back) for c in pre.connections}
    changes = sorted(
        (str(before.get(c.cid)), c.fate.value, c.held_back)
        for c in succ.connections
        if before.get(c.cid) != (c.fate, c.held_back)
    )
    kinds: list[object] = [name, tuple(changes)]
    for param, value in zip(ACTIONS[name].params, args, strict=True):
        if param is Param.CONNECTION:
            conn = pre.connection(value)
            kinds.append((conn.fate, conn.held_back, conn.requested))
        elif param in (Param.PROCESS, Param.WORKER, Param.MASTER):
            proc = pre.process(value)
            owns = min(len(pre.owned(value)), 2)
            kinds.append(None if proc is None else (proc.role, proc.phase, proc.stopped, owns))
    return tuple(kinds)


@functools.cache
def sample_moves(seeds: int = 24, length: int = 20) -> dict[str, tuple[Sample, ...]]:
    """For each action, the first move of each shape (:func:`shape`) met on seeded walks
    through every configuration of :func:`configurations`, and the one from the richest
    pre-state (a fixed search: the tests that use it check the same steps on every run)."""
    first: dict[tuple[object, ...], Sample] = {}
    rich: dict[str, Sample] = {}
    for seed in range(seeds):
        for config in configurations():
            choices = [seed * 7919 + k * 104729 + (seed * k) % 13 for k in range(length)]
            for pre, move in walk_moves(config, choices):
                name = move[0]
                first.setdefault(shape(pre, move), (config, pre, move))
                if name not in rich or richness(pre) > richness(rich[name][1]):
                    rich[name] = (config, pre, move)
    found: dict[str, tuple[Sample, ...]] = {}
    for sample in [*first.values(), *rich.values()]:
        name = sample[2][0]
        if sample not in found.get(name, ()):
            found[name] = (*found.get(name, ()), sample)
    return found
