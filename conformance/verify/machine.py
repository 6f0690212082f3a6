"""The model as a Hypothesis state machine: one rule per action of the table, every invariant
checked after every step, and a *backend* that decides what runs alongside the model.

With :class:`ModelBackend` nothing else runs: Hypothesis picks internal actions too, and the
machine is a random walk through the model checking its invariants (the model's own tests). With
a real target behind a backend, only environment actions are rules: each is performed on the
target and in the model, then the model's internal actions are closed over and the candidate
states are filtered by what the backend observes. The machine fails when no model state agrees
with the observation — the target did something the model does not allow.

Discussion:
    *The machine tracks a set of model states, not one.* A real server makes internal choices we
    do not see (which worker accepted, whether the master has reaped yet). Keeping every model
    state consistent with the observations so far is the standard way to check a nondeterministic
    specification against a black box; with the pure model the set always has one element,
    because Hypothesis draws each choice explicitly.

    *Rules are generated from* :data:`~forkshare.model.actions.ACTIONS`. Hand-written rules would
    be a second list of actions; generated ones cannot drift from the table, and the guard of
    each action is the rule's precondition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Protocol

from hypothesis import reject, target
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from forkshare.conformance.verify.coverage import Coverage
from forkshare.conformance.verify.errors import ClosureTooLargeError
from forkshare.model.actions import ACTIONS
from forkshare.model.config import Config
from forkshare.model.explorer import initial_state
from forkshare.model.invariants import INVARIANTS
from forkshare.model.state import System
from forkshare.model.symmetry import canonical
from forkshare.model.table import Action, Kind

Step = tuple[str, tuple[int, ...]]
"""An action's name and its arguments (model pids, sids and cids)."""

MAX_CLOSURE = 20_000
"""How many states the internal closure may reach before it gives up (a runaway model)."""

SETTLE: Step = ("settle", ())
"""The pseudo-step :meth:`ForkshareMachine.settle` hands the backend: time passes, nothing else."""

UNEXPLAINED = "unexplained_behaviour"
"""Not a property: the target showed a state no model state projects to, and no monitor (and no
unsafe design of the model) explains it. Reported as such, never as a violation."""


class NonconformanceError(AssertionError):
    """The target broke a property (``prop`` names it, ``message`` is the evidence), or did
    something unexplained (``prop`` is :data:`UNEXPLAINED`); ``steps`` led there, ``observed``
    is the record that failed and ``allowed`` the records the model allowed instead.

    An ``AssertionError`` on purpose: Hypothesis treats it as a failing example and shrinks it.
    """

    def __init__(
        self,
        prop: str,
        message: str,
        steps: list[Step],
        observed: str = "",
        allowed: list[str] | None = None,
    ) -> None:
        super().__init__(f"{prop}: {message}")
        self.prop = prop
        self.message = message
        self.steps = list(steps)
        self.observed = observed
        self.allowed = list(allowed or [])


class Backend(Protocol):
    """What runs alongside the model while the machine steps through it."""

    drives_internal: bool
    """True when the model chooses internal actions (pure model); False when a real server does."""
    steps: list[Step]
    """The machine's steps so far (shared with the machine, for the violations it raises)."""
    coverage: Coverage
    """Where the machine notes the internal actions that explain what was observed."""
    failed: bool
    """The run already failed: :meth:`drain` must not measure (and raise) anything more."""

    def perform(self, step: Step, states: frozenset[System]) -> bool:
        """Perform environment ``step`` on the target (``states``: the model's states before it).

        ``SETTLE`` is performed too: nothing to do but note that time passes.

        Returns:
            False when the process the step targets is already gone on the target (a signal to
            it would be ESRCH), so the step reached no one; True otherwise.
        """

    def allowed(self, candidates: frozenset[System]) -> frozenset[System]:
        """The candidates that agree with what the target shows now (may wait for it to settle)."""

    def drain(self) -> None:
        """At the end of a run: let pending timed checks finish (may raise)."""

    def close(self) -> None:
        """Stop everything the backend started."""


class ModelBackend:
    """No target: the machine is a random walk through the model itself."""

    drives_internal = True

    def __init__(self, config: Config) -> None:
        self.config = config
        self.steps: list[Step] = []
        self.coverage = Coverage()
        self.failed = False

    def perform(self, step: Step, states: frozenset[System]) -> bool:
        """Nothing to perform: the model is all there is."""
        return True

    def allowed(self, candidates: frozenset[System]) -> frozenset[System]:
        """Every candidate is allowed (the caller has already drawn one)."""
        return candidates

    def drain(self) -> None:
        """Nothing is timed."""

    def close(self) -> None:
        """Nothing to stop."""


BackendFactory = Callable[[Config], Backend]


def enabled_arguments(
    config: Config, action: Action, states: Iterable[System]
) -> list[tuple[int, ...]]:
    """Argument tuples for which ``action`` is enabled in at least one of ``states``, sorted."""
    found: set[tuple[int, ...]] = set()
    for state in states:
        found.update(action.arguments(config, state))
    return sorted(found)


def internal_closure(config: Config, states: frozenset[System]) -> frozenset[System] | None:
    """Every state reachable from ``states`` by internal actions only, or None when that is more
    than :data:`MAX_CLOSURE` states (a runaway model)."""
    found = internal_paths(config, states)
    return None if found is None else frozenset(found)


Provenance = dict[System, tuple[System, str] | None]
"""Each state of a closure → (the state it came from, the internal action), None for a start."""


def internal_paths(config: Config, states: frozenset[System]) -> Provenance | None:
    """:func:`internal_closure` with, for each state, how it was first reached.

    One state is kept per class of states equal up to renaming the processes forked within the
    closure (the first found, with its own names): the others show the same records and have
    the same futures up to that renaming, and a new process is only ever targeted by its role
    and order (:meth:`~forkshare.conformance.verify.target_backend.TargetBackend.real_pid`).
    Processes the given states already name are never renamed: a scenario's ``stop_worker(2)``
    and its later ``continue_worker(2)`` must mean the same process.
    """
    seen: Provenance = dict.fromkeys(states)
    named = frozenset(p.pid for state in states for p in state.processes)
    classes = {canonical(state, named)[0] for state in states}
    frontier = list(states)
    while frontier:
        state = frontier.pop()
        for action in ACTIONS.values():
            if action.kind is not Kind.INTERNAL:
                continue
            for args in action.arguments(config, state):
                for succ in action.successors(config, state, args):
                    if succ in seen:
                        continue
                    key = canonical(succ, named)[0]
                    if key in classes:
                        continue
                    classes.add(key)
                    seen[succ] = (state, action.name)
                    frontier.append(succ)
        if len(seen) > MAX_CLOSURE:
            return None
    return seen


def actions_on_paths(paths: Provenance, ends: Iterable[System]) -> set[str]:
    """The internal actions on the recorded paths to ``ends``."""
    names: set[str] = set()
    for end in ends:
        link = paths.get(end)
        while link is not None:
            state, name = link
            names.add(name)
            link = paths.get(state)
    return names


class ForkshareMachine(RuleBasedStateMachine):
    """Base class; :func:`build_machine` adds one rule per action for a given configuration."""

    config: ClassVar[Config]
    checked: ClassVar[frozenset[str]] = frozenset(INVARIANTS)
    """Names of the invariants checked after every step (default: all of them)."""
    visited: ClassVar[set[System] | None] = None
    """When set, every state the machine passes through is added (canonical form), for coverage."""

    def __init__(self) -> None:
        super().__init__()
        self.states: frozenset[System] = frozenset({initial_state()})
        self.backend: Backend = self.create_backend()
        self.steps: list[Step] = []
        self.backend.steps = self.steps  # the backend names the steps in its violations

    @classmethod
    def create_backend(cls) -> Backend:
        """What runs alongside the model; :func:`build_machine` decides."""
        return ModelBackend(cls.config)

    @initialize(data=st.data())
    def record_initial(self, data: st.DataObject) -> None:
        """Count the initial state as visited; a real target is started first (a run that never
        starts it would only watch connections being refused)."""
        self._record()
        if not self.backend.drives_internal:
            self.take(ACTIONS["start_master"], data)

    def teardown(self) -> None:
        """Score the walk, let pending timed checks finish, then stop the backend's processes."""
        # Steer the walks towards what they have not shown yet (Hypothesis targeted search):
        # on a real target, the distinct records it showed; in the model, the distinct actions
        # a walk took (short walks that stop after a start and a connect teach nothing).
        if not currently_in_test_context():
            pass  # a fixed scenario, not a Hypothesis walk
        elif self.backend.drives_internal:
            target(float(len({name for name, _ in self.steps})), label="distinct actions")
        else:
            target(float(len(self.backend.coverage.records)), label="distinct observations")
        try:
            self.backend.drain()
        finally:
            self.backend.close()

    @rule()
    def settle(self) -> None:
        """Let time pass: nothing changes in the model; a real target is observed again.

        Always enabled, so a walk that reaches a terminal state (everything shut down) can go on.
        """
        if not self.backend.drives_internal:
            self.steps.append(SETTLE)
            self.backend.perform(SETTLE, self.states)
            self.states = self.settled(self.states)
            if not self.states:
                self.unexplained("while idle, the target shows a state the model does not allow")

    @invariant()
    def every_invariant_holds(self) -> None:
        """Every invariant that applies to the configuration holds in some candidate state.

        With a real target the candidates are every state consistent with what was observed: an
        invariant is violated when it fails in all of them (the target certainly broke it). With
        the pure model there is one candidate, so this is the plain check.
        """
        if not self.states:
            return
        for inv in INVARIANTS.values():
            if inv.name not in self.checked or not inv.applies(self.config):
                continue
            if not any(inv.holds(self.config, state) for state in self.states):
                raise NonconformanceError(inv.name, f"invariant violated: {inv.claim}", self.steps)

    def take(self, action: Action, data: st.DataObject) -> None:
        """Draw enabled arguments for ``action``, perform it, and move the candidate states on."""
        args = data.draw(st.sampled_from(enabled_arguments(self.config, action, self.states)))
        step: Step = (action.name, args)
        self.steps.append(step)
        if action.kind is Kind.ENVIRONMENT and not self.backend.perform(step, self.states):
            # The process it targets has already gone on the real server (a signal to it would
            # be ESRCH): only the candidates where the action was not enabled are still
            # possible, and nothing changed in them.
            unchanged = frozenset(s for s in self.states if not action.guard(self.config, s, *args))
            if not unchanged:
                self.unexplained(f"{action.name}{args}: no real process plays its target")
            self.states = unchanged
            self._record()
            return
        successors = frozenset(
            succ
            for state in self.states
            if action.guard(self.config, state, *args)
            for succ in action.successors(self.config, state, args)
        )
        if self.backend.drives_internal:
            self.states = frozenset({data.draw(st.sampled_from(sorted(successors, key=repr)))})
        else:
            self.states = self._settled_or_cut(successors)
            if not self.states:
                self.unexplained(
                    f"after {action.name}{args} the target shows a state the model does not allow"
                )
        self._record()

    def unexplained(self, message: str) -> None:
        """Stop the run: the target did something the model does not allow.

        Raises:
            NonconformanceError: with :data:`UNEXPLAINED` and the backend's last records.
        """
        self.backend.failed = True
        records = getattr(self.backend, "history", None)
        last = records[-1] if records else None
        raise NonconformanceError(
            UNEXPLAINED,
            message,
            self.steps,
            observed=last.record.describe() if last is not None else "",
            allowed=sorted(r.describe() for r in last.allowed) if last is not None else [],
        )

    def _settled_or_cut(self, states: frozenset[System]) -> frozenset[System]:
        """:meth:`settled`; in a random walk, a closure too large to follow ends the walk: it is
        noted in the coverage and Hypothesis starts the next one (a verdict, not a crash). A
        scenario or a replay (outside Hypothesis) raises."""
        try:
            return self.settled(states)
        except ClosureTooLargeError as error:
            if not currently_in_test_context():
                raise
            self.backend.coverage.cut_short.append(str(error))
            reject()

    def settled(self, states: frozenset[System]) -> frozenset[System]:
        """The closure of ``states`` over internal actions, filtered by what the backend
        observes; the internal actions that explain it are noted for coverage.

        Raises:
            ClosureTooLargeError: more than :data:`MAX_CLOSURE` states are reachable.
        """
        paths = internal_paths(self.config, states)
        if paths is None:
            raise ClosureTooLargeError(
                f"after {self.steps[-1] if self.steps else 'the start'} the model allows more "
                f"than {MAX_CLOSURE} states: pin what the profile leaves open (--mode, "
                "--defer-accept, --reuseport-clones) or verify fewer workers (--workers)"
            )
        allowed = self.backend.allowed(frozenset(paths))
        self.backend.coverage.inferred |= actions_on_paths(paths, allowed)
        return allowed

    def is_enabled(self, action: Action) -> bool:
        """True when ``action`` may fire in some candidate state (and the backend lets us choose)."""
        if action.kind is Kind.INTERNAL and not self.backend.drives_internal:
            return False
        return any(True for state in self.states for _ in action.arguments(self.config, state))

    def _record(self) -> None:
        if self.visited is not None:
            for state in self.states:
                self.visited.add(canonical(state)[0])


def _make_rule(action: Action) -> Callable[..., None]:
    def step(self: ForkshareMachine, data: st.DataObject) -> None:
        self.take(action, data)

    step.__name__ = action.name
    step.__doc__ = action.summary
    guarded = precondition(lambda self: self.is_enabled(action))(step)
    return rule(data=st.data())(guarded)


def build_machine(
    config: Config,
    backend_factory: BackendFactory = ModelBackend,
    visited: set[System] | None = None,
    checked: Iterable[str] | None = None,
) -> type[ForkshareMachine]:
    """A state machine class for ``config``: one rule per entry of the action table.

    Args:
        config: the configuration the model runs under.
        backend_factory: builds what runs alongside the model (default: nothing, pure model).
        visited: if given, collects every canonical state the machine passes through.
        checked: the invariants to check after every step (default: every one).

    Raises:
        KeyError: ``checked`` names an invariant that is not in the table.
    """
    names = frozenset(INVARIANTS if checked is None else checked)
    unknown = names - set(INVARIANTS)
    if unknown:
        raise KeyError(f"no such invariant: {', '.join(sorted(unknown))}")
    namespace: dict[str, Any] = {
        "config": config,
        "create_backend": classmethod(lambda cls: backend_factory(cls.config)),
        "visited": visited,
        "checked": names,
    }
    for action in ACTIONS.values():
        namespace[action.name] = _make_rule(action)
    name = f"ForkshareMachine_{config.mode.value}"
    return type(name, (ForkshareMachine,), namespace)
