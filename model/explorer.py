"""Exhaustive breadth-first exploration of the reachable states, with symmetry reduction.

Breadth-first order makes the first violation found for each invariant a shortest one. A trace
is replayed from the initial state through the concrete (not canonical) states, so the pids in the
printed steps stay the same from one step to the next.

:func:`explore` runs the search on compact states (``forkshare.model.compact_search``, on one
core, or ``forkshare.model.parallel_search``, on several) and turns what it found back into
model values. :func:`explore_reference` is the explorer as it was before the compact states: it
walks ``System`` values with the action table itself. It is kept as the oracle the compact
search is tested against (both must find the same states, transitions and violations) and as the
baseline ``forkshare bench`` measures the compact search against.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from forkshare.model.actions import ACTIONS
from forkshare.model.compact_rules import UnknownConfigFieldError
from forkshare.model.compact_search import search
from forkshare.model.compact_state import decode
from forkshare.model.compact_symmetry import canonical_of
from forkshare.model.config import Config
from forkshare.model.invariants import INVARIANTS
from forkshare.model.state import System
from forkshare.model.symmetry import canonical
from forkshare.model.table import Invariant, candidates, describe_step

Step = tuple[str, tuple[int, ...]]
"""An action's name and its arguments."""


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One step of a counterexample: the action taken and the state it led to."""

    action: str
    args: tuple[int, ...]
    state: System

    @property
    def label(self) -> str:
        """The step as a readable call, e.g. ``kill_worker(worker3)``."""
        return describe_step(self.action, self.args, ACTIONS[self.action].params)


@dataclass(frozen=True, slots=True)
class Violation:
    """An invariant that fails, with a shortest trace from the initial state."""

    invariant: str
    claim: str
    trace: tuple[TraceStep, ...]


@dataclass(slots=True)
class Exploration:
    """What an exploration found."""

    config: Config
    states: int = 0
    transitions: int = 0
    seconds: float = 0.0
    complete: bool = True
    """False when ``max_states`` cut the exploration short."""
    violations: dict[str, Violation] = field(default_factory=dict)
    actions_fired: Counter[str] = field(default_factory=Counter)
    max_wakeups: int = 0
    """The most processes one arriving connection woke (the thundering herd, K4)."""
    reachable: frozenset[System] | None = None
    """Every state found (canonical), when the exploration was asked to keep them."""

    @property
    def states_per_second(self) -> float:
        """Distinct states found per second."""
        return self.states / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> bool:
        """True when every invariant that applies held in every reachable state."""
        return not self.violations


def initial_state() -> System:
    """The state before anything runs: no process, no socket, no client."""
    return System()


def successors(config: Config, state: System) -> Iterator[tuple[Step, System]]:
    """Every (step, successor) pair from ``state``."""
    table = candidates(config, state)
    for name, action in ACTIONS.items():
        for args in action.arguments(config, state, table):
            for succ in action.successors(config, state, args):
                yield (name, args), succ


Progress = Callable[[int, int], None]
"""Called with (states, frontier size) every few thousand states (every level in parallel)."""


def explore(
    config: Config,
    *,
    max_states: int | None = None,
    progress: Progress | None = None,
    processes: int = 1,
    keep_states: bool = False,
) -> Exploration:
    """Visit every state reachable from :func:`initial_state` (up to symmetry) and check every
    applicable invariant in each; ``max_states`` bounds the work (then ``complete`` is False).

    ``processes`` above 1 splits the search over that many processes (the counts are the same;
    a counterexample may be another one of the same length). ``keep_states`` keeps every state
    found in ``reachable`` (decoding them costs about as much as finding them).
    """
    try:
        if processes > 1:
            from forkshare.model.parallel_search import parallel_search

            found = parallel_search(
                config,
                processes=processes,
                max_states=max_states,
                progress=progress,
                keep_states=keep_states,
            )
        else:
            found = search(
                config, max_states=max_states, progress=progress, keep_states=keep_states
            )
    except UnknownConfigFieldError:  # a Config field the compact actions do not know yet
        return explore_reference(
            config, max_states=max_states, progress=progress, keep_states=keep_states
        )
    result = Exploration(
        config,
        states=found.states,
        transitions=found.transitions,
        seconds=found.seconds,
        complete=found.complete,
        actions_fired=Counter(found.fired),
        max_wakeups=found.max_wakeups,
    )
    order = list(INVARIANTS)
    for name, path in sorted(found.paths.items(), key=lambda kv: (len(kv[1]), order.index(kv[0]))):
        concrete = [(step, decode(state)) for step, state in path]
        claim = INVARIANTS[name].claim
        result.violations[name] = Violation(name, claim, replay(config, concrete))
    if found.reachable is not None:
        result.reachable = frozenset(decode(state) for state in found.reachable)
    return result


def explore_reference(
    config: Config,
    *,
    max_states: int | None = None,
    progress: Progress | None = None,
    keep_states: bool = False,
) -> Exploration:
    """The explorer before compact states, unchanged: the oracle and the benchmark's baseline."""
    checks = [inv for inv in INVARIANTS.values() if inv.applies(config)]
    start = time.perf_counter()
    root, _ = canonical(initial_state())
    parents: dict[System, tuple[System, Step] | None] = {root: None}
    frontier: deque[System] = deque([root])
    result = Exploration(config)
    _check(config, root, checks, parents, result)
    while frontier:
        if max_states is not None and len(parents) >= max_states:
            result.complete = False
            break
        state = frontier.popleft()
        for step, succ in successors(config, state):
            result.transitions += 1
            result.actions_fired[step[0]] += 1
            if succ in parents:  # already canonical and seen: skip the renaming
                continue
            key, _ = canonical(succ)
            if key in parents:
                continue
            parents[key] = (state, step)
            frontier.append(key)
            _check(config, key, checks, parents, result)
        if progress is not None and len(parents) % 5000 < 50:
            progress(len(parents), len(frontier))
    result.states = len(parents)
    result.seconds = time.perf_counter() - start
    if keep_states:
        result.reachable = frozenset(parents)
    return result


def _check(
    config: Config,
    state: System,
    checks: list[Invariant],
    parents: dict[System, tuple[System, Step] | None],
    result: Exploration,
) -> None:
    for conn in state.connections:
        result.max_wakeups = max(result.max_wakeups, conn.wakeups)
    for inv in checks:
        if inv.name in result.violations:
            continue
        if not inv.holds(config, state):
            path = _path(state, parents)
            result.violations[inv.name] = Violation(inv.name, inv.claim, replay(config, path))


def _path(
    state: System, parents: dict[System, tuple[System, Step] | None]
) -> list[tuple[Step, System]]:
    path: list[tuple[Step, System]] = []
    link = parents[state]
    while link is not None:
        parent, step = link
        path.append((step, state))
        state = parent
        link = parents[state]
    path.reverse()
    return path


def replay(config: Config, path: list[tuple[Step, System]]) -> tuple[TraceStep, ...]:
    """Re-run a path of canonical states from the initial state through concrete states, so the
    trace names processes consistently (each step's arguments are renamed back)."""
    concrete = initial_state()
    steps: list[TraceStep] = []
    for (name, args), target in path:
        _, renaming = canonical(concrete)
        back = {new: old for old, new in renaming.items()}
        action = ACTIONS[name]
        real_args = tuple(
            back.get(a, a) if p.value in ("process", "worker", "master") else a
            for p, a in zip(action.params, args, strict=True)
        )
        for succ in action.successors(config, concrete, real_args):
            if canonical(succ)[0] == target:
                concrete = succ
                break
        else:  # pragma: no cover - a replay that diverges is a bug in the model or in symmetry
            raise AssertionError(f"replay diverged at {name}{args}")
        steps.append(TraceStep(name, real_args, concrete))
    return tuple(steps)


def reaches(config: Config, target: System, *, max_states: int = 200_000) -> bool:
    """True when a breadth-first exploration from :func:`initial_state` meets ``target`` (up to
    renaming of processes) within ``max_states`` states."""
    goal = canonical_of(target)
    found = search(config, max_states=max_states, keep_states=True, goal=goal)
    assert found.reachable is not None
    return goal in set(found.reachable)
