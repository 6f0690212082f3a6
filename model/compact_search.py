"""Breadth-first search over compact states: the engine behind :func:`forkshare.model.explorer.explore`.

:class:`Expander` knows, for one configuration, how to list every successor of a canonical compact
state (through the twins of :mod:`forkshare.model.compact_actions`) and which invariants fail in
one (through :mod:`forkshare.model.compact_invariants`). :func:`search` runs the breadth-first
search on one core; :mod:`forkshare.model.parallel_search` splits it over several processes.

The search keeps, for every state found, the state it was first reached from and the step that
led there; :func:`forkshare.model.explorer.explore` turns the path to a violating state into a
trace of concrete ``System`` values with the model's own actions.

Discussion:
    *An audit of the twins while they run.* The twins are held to the model by tests, but the
    model may change after the tests were last run against a twin (a bug fix to an action).
    So the search re-expands a sample of the states it visits — every ``audit_every``-th, the
    first one always — with the model's own actions and invariants, through
    :func:`~forkshare.model.compact_state.decode`, and stops with :class:`TwinDivergenceError` when
    they disagree. At the default rate this costs 1–2 % of the run and catches any change
    that shows in more than a sliver of the state space; the tests audit every state.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from forkshare.model.actions import ACTIONS
from forkshare.model.compact_actions import CAN_EVER_FIRE, TWINS, Successors
from forkshare.model.compact_invariants import CHECKS, READS
from forkshare.model.compact_rules import Rules
from forkshare.model.compact_state import (
    C_WAKEUPS,
    S_CONNECTIONS,
    S_LISTENERS,
    S_MUTEX,
    S_PROCESSES,
    S_USAGE,
    Compact,
    decode,
)
from forkshare.model.compact_symmetry import canonical_of
from forkshare.model.config import Config
from forkshare.model.invariants import INVARIANTS
from forkshare.model.state import System
from forkshare.model.table import candidates

Step = tuple[str, tuple[int, ...]]
Progress = Callable[[int, int], None]
Check = Callable[[Rules, Compact], bool]

_VARIED = frozenset({S_PROCESSES})
_EVERYTHING = frozenset({S_PROCESSES, S_LISTENERS, S_CONNECTIONS, S_MUTEX, S_USAGE})

AUDIT_EVERY = 512
"""By default, one expanded state in this many is re-expanded with the model's own actions."""


class TwinDivergenceError(AssertionError):
    """A compact twin disagrees with the model's action or invariant on a state: the twin must be
    brought back in line with the model (the model is the specification)."""


class Expander:
    """Successors and violated invariants of canonical compact states, for one configuration."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.rules = Rules(config)
        self.steps: list[Callable[[Rules, Compact, Successors], None]] = [
            TWINS.get(name) or _model_step(name, config)
            for name in ACTIONS
            if name not in TWINS or CAN_EVER_FIRE.get(name, _always)(self.rules)
        ]
        applicable = [inv for inv in INVARIANTS.values() if inv.applies(config)]
        self.checks: list[tuple[str, Check]] = [
            (inv.name, CHECKS.get(inv.name) or _model_check(inv.name, config)) for inv in applicable
        ]
        groups: dict[tuple[int, ...], list[tuple[str, Check]]] = {}
        self.direct: list[tuple[str, Check]] = []
        for name, check in self.checks:
            parts = READS.get(name, _EVERYTHING)
            if parts & _VARIED:  # the processes vary almost as much as the state: compute
                self.direct.append((name, check))
            else:
                groups.setdefault(tuple(sorted(parts)), []).append((name, check))
        self.remembered: list[
            tuple[tuple[int, ...], list[tuple[str, Check]], dict[object, list[str]]]
        ]
        self.remembered = [(parts, checks, {}) for parts, checks in groups.items()]
        """Checks grouped by the parts they read, with their verdicts by those parts' values."""

    def successors(self, state: Compact) -> Successors:
        """Every ``(action, arguments, canonical successor)`` of ``state``, in the order the model's
        explorer lists them (action table order, then arguments, then the effect's order)."""
        out: Successors = []
        rules = self.rules
        for step in self.steps:
            step(rules, state, out)
        return out

    def violated(self, state: Compact) -> list[str]:
        """Names of the applicable invariants that fail in ``state``. A check that does not read
        the processes is remembered by the value of the parts it reads
        (:data:`~forkshare.model.compact_invariants.READS`): few distinct connection or listener
        tuples occur, so it is computed once for each. (Checks that read the processes are
        computed every time: hashing the processes costs about as much as checking them.)"""
        rules = self.rules
        failed: list[str] = []
        for parts, checks, memory in self.remembered:
            key = state[parts[0]] if len(parts) == 1 else tuple([state[p] for p in parts])
            verdict = memory.get(key)
            if verdict is None:
                verdict = memory[key] = [name for name, check in checks if not check(rules, state)]
            if verdict:
                failed.extend(verdict)
        for name, check in self.direct:
            if not check(rules, state):
                failed.append(name)
        return failed

    def audit(self, state: Compact) -> None:
        """Compare the twins with the model on ``state``; raise :class:`TwinDivergenceError`,
        naming the steps and successors that differ, if they do."""
        concrete = decode(state)
        expected = model_successors(self.config, concrete)
        found = self.successors(state)
        if found != expected:
            missing = [
                (name, args, decode(succ))
                for name, args, succ in expected
                if (name, args, succ) not in found
            ]
            extra = [
                (name, args, decode(succ))
                for name, args, succ in found
                if (name, args, succ) not in expected
            ]
            order = "" if missing or extra else " (the same steps in another order)"
            raise TwinDivergenceError(
                f"the compact actions differ from the model{order} in {concrete}: "
                f"the model's steps {missing} are missing, the steps {extra} are extra"
            )
        wrong = [
            name
            for name, check in self.checks
            if check(self.rules, state) != INVARIANTS[name].holds(self.config, concrete)
        ]
        if wrong:
            raise TwinDivergenceError(f"invariants {wrong} differ from the model in {concrete}")


def _always(rules: Rules) -> bool:
    return True


def model_successors(config: Config, state: System) -> Successors:
    """The model's own ``(action, arguments, canonical compact successor)`` list for ``state``."""
    table = candidates(config, state)
    return [
        (name, args, canonical_of(succ))
        for name, action in ACTIONS.items()
        for args in action.arguments(config, state, table)
        for succ in action.successors(config, state, args)
    ]


def _model_step(name: str, config: Config) -> Callable[[Rules, Compact, Successors], None]:
    """An action without a twin, run through the model (decode, effect, encode)."""
    action = ACTIONS[name]

    def step(rules: Rules, state: Compact, out: Successors) -> None:
        concrete = decode(state)
        for args in action.arguments(config, concrete):
            for succ in action.successors(config, concrete, args):
                out.append((name, args, canonical_of(succ)))

    return step


def _model_check(name: str, config: Config) -> Callable[[Rules, Compact], bool]:
    """An invariant without a twin, checked through the model."""
    holds = INVARIANTS[name].holds

    def check(rules: Rules, state: Compact) -> bool:
        return holds(config, decode(state))

    return check


@dataclass(slots=True)
class Search:
    """What a search found."""

    states: int = 0
    transitions: int = 0
    fired: dict[str, int] = field(default_factory=dict)
    paths: dict[str, list[tuple[Step, Compact]]] = field(default_factory=dict)
    """For each violated invariant, the steps from the initial state to the first state found to
    break it (a shortest path: the search is breadth first)."""
    max_wakeups: int = 0
    complete: bool = True
    seconds: float = 0.0
    reachable: list[Compact] | None = None
    """Every state found, when the search was asked to keep them."""


def initial_compact() -> Compact:
    """The canonical compact form of the model's initial state."""
    return canonical_of(System())


def search(
    config: Config,
    *,
    max_states: int | None = None,
    progress: Progress | None = None,
    audit_every: int = AUDIT_EVERY,
    keep_states: bool = False,
    goal: Compact | None = None,
) -> Search:
    """Breadth-first search of every state reachable from the initial state, on one core. With
    a ``goal``, the search stops (incomplete) as soon as it finds that state."""
    start = time.perf_counter()
    with collector_paused():
        level = Level(Expander(config), audit_every)
        level.add(initial_compact(), None)
        frontier = level.take_frontier()
        found = Search()
        while frontier:
            for state in frontier:
                if max_states is not None and len(level.parents) >= max_states:
                    found.complete = False
                    break
                if goal is not None and goal in level.parents:
                    found.complete = False
                    break
                level.expand(state)
                if progress is not None and len(level.parents) % 5000 < 50:
                    progress(len(level.parents), len(level.frontier))
            if not found.complete:
                break
            frontier = level.take_frontier()
        level.report(found)
        found.paths = {
            name: path_to(state, level.parents.__getitem__)
            for name, (_, state) in level.first_violations.items()
        }
        if keep_states:
            found.reachable = list(level.parents)
        del level  # freed while the collector sleeps: it would otherwise scan every state once
    found.seconds = time.perf_counter() - start
    return found


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: the search allocates millions of tuples and keeps a
    fraction of them, which makes the collector rescan the growing set of states again and
    again; tuples of ints form no cycle, so nothing is lost by waiting."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


Link = tuple[Compact, Step] | int | None
"""How a state was first reached: from a parent state by a step, from the search process with
this number (the parallel search), or not at all (the initial state)."""


def path_to(state: Compact, link_of: Callable[[Compact], Link]) -> list[tuple[Step, Compact]]:
    """The steps from the initial state to ``state``, following each state's first link back."""
    path: list[tuple[Step, Compact]] = []
    link = link_of(state)
    while link is not None:
        assert not isinstance(link, int), "a link to another process must be resolved first"
        parent, step = link
        path.append((step, state))
        state = parent
        link = link_of(state)
    path.reverse()
    return path


class Level:
    """The states one search process owns, and the next breadth-first level of them.

    :meth:`expand` lists a state's successors and passes each new one to :meth:`add`, which
    remembers how it was reached, checks its invariants, and queues it for the next level (the
    parallel search adds only the successors this process owns, and sends the others to their
    owners).
    """

    def __init__(self, expander: Expander, audit_every: int) -> None:
        self.expander = expander
        self.audit_every = audit_every
        self.parents: dict[Compact, Link] = {}
        self.frontier: list[Compact] = []
        self.depth = 0
        self.expanded = 0
        self.transitions = 0
        self.fired: dict[str, int] = {}
        self.max_wakeups = 0
        self.first_violations: dict[str, tuple[int, Compact]] = {}
        """For each violated invariant: the depth and the first state found to break it."""

    def take_frontier(self) -> list[Compact]:
        """The states queued for the next level (the current level ends)."""
        frontier, self.frontier = self.frontier, []
        self.depth += 1
        return frontier

    def add(self, state: Compact, link: Link) -> None:
        """Keep ``state`` if it is new."""
        parents = self.parents
        if state in parents:
            return
        parents[state] = link
        self.frontier.append(state)
        for conn in state[S_CONNECTIONS]:
            if conn[C_WAKEUPS] > self.max_wakeups:
                self.max_wakeups = conn[C_WAKEUPS]
        for name in self.expander.violated(state):
            if name not in self.first_violations:
                self.first_violations[name] = (self.depth, state)

    def successors(self, state: Compact) -> Successors:
        """Every successor of ``state`` (auditing a sample), counted as transitions and fired
        actions."""
        if self.expanded % self.audit_every == 0:
            self.expander.audit(state)
        self.expanded += 1
        out = self.expander.successors(state)
        self.transitions += len(out)
        fired = self.fired
        for name, _, _ in out:
            fired[name] = fired.get(name, 0) + 1
        return out

    def expand(self, state: Compact) -> None:
        """Keep every new successor of ``state`` (:meth:`successors` and :meth:`add` in one loop)."""
        if self.expanded % self.audit_every == 0:
            self.expander.audit(state)
        self.expanded += 1
        out = self.expander.successors(state)
        self.transitions += len(out)
        fired = self.fired
        parents = self.parents
        for name, args, succ in out:
            fired[name] = fired.get(name, 0) + 1
            if succ not in parents:
                self.add(succ, (state, (name, args)))

    def report(self, found: Search) -> None:
        """Copy this process's counts into ``found``."""
        found.states = len(self.parents)
        found.transitions = self.transitions
        found.fired = self.fired
        found.max_wakeups = self.max_wakeups
