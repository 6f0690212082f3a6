"""Verifying a target: the random run (Hypothesis), fixed scenarios, replays, and the verdicts.

:func:`run_conformance` is the entry point for third parties' test suites, in the shape of
Hypothesis's ``run_conformance_test``: give it a :class:`~forkshare.conformance.verify.profile.Profile`
(and settings), it raises :class:`~forkshare.conformance.verify.machine.NonconformanceError` on the first
violation, shrunk. :func:`verify` does the same for the command line and returns a
:class:`Result` instead of raising. :func:`run_steps` plays a fixed list of steps through the
same backend (the scenarios of :mod:`~forkshare.conformance.verify.scenarios` and ``--replay``).

Discussion:
    *Naming the property behind a mismatch.* When no model state matches what the target shows,
    the steps and the records observed are replayed through the model under each alternative of
    the claimed configuration: first the other parent-death policy (a correct design, but not
    the one claimed: ``orphans_exit_with_master``), then every unsafe design of the model's
    :data:`~forkshare.model.variants.VARIANTS` that belongs to the claimed mode (private reuseport
    sockets, a mutex nobody force-unlocks, no respawn, rebinding on reload). An alternative that
    explains every observation names the property the target breaks: the invariant that design
    is known to violate. Only when none explains it is the verdict the generic
    ``observation_matches_model``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import cast

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from forkshare.conformance.verify.abstraction import of_state
from forkshare.conformance.verify.machine import (
    MISMATCH,
    SETTLE,
    NonconformanceError,
    Step,
    build_machine,
    internal_closure,
)
from forkshare.conformance.verify.profile import AUTO, Profile
from forkshare.conformance.verify.target_backend import (
    Observed,
    Settling,
    TargetBackend,
    resolve,
    stall_finding,
)
from forkshare.conformance.verify.trace_check import TraceReport, check_trace
from forkshare.model.actions import ACTIONS
from forkshare.model.config import Bounds, Config, Mode, ParentDeath
from forkshare.model.explorer import initial_state
from forkshare.model.invariants import INVARIANTS
from forkshare.model.state import System
from forkshare.model.table import Kind
from forkshare.model.variants import VARIANTS

DEFAULT_BOUNDS = Bounds(
    connections=3, kills=1, stops=2, reloads=1, shutdowns=1, master_kills=1, upgrades=0
)


@dataclass(slots=True)
class Violation:
    """The first property the target broke, with the evidence."""

    prop: str
    message: str
    steps: list[Step]
    observed: str
    allowed: list[str]


@dataclass(slots=True)
class Result:
    """What a verification found."""

    target: str
    config: Config
    steps: int = 0
    seconds: float = 0.0
    violation: Violation | None = None
    findings: list[str] = field(default_factory=list)
    traces: list[TraceReport] = field(default_factory=list)

    @property
    def steps_per_second(self) -> float:
        """Steps (actions performed and checked) per second of wall time."""
        return self.steps / self.seconds if self.seconds else 0.0

    @property
    def verdict(self) -> str:
        """``conforms``, or ``violates PROPERTY``."""
        return "conforms" if self.violation is None else f"violates {self.violation.prop}"

    def verdicts(self) -> dict[str, str]:
        """Property → ``holds``, ``VIOLATED`` or ``not claimed``, for every invariant, the
        observation match, and what the trace validation checked."""
        table: dict[str, str] = {}
        for inv in INVARIANTS.values():
            table[inv.name] = "holds" if inv.applies(self.config) else "not claimed"
        table[MISMATCH] = "holds"
        for report in self.traces:
            for name, problems in report.problems.items():
                if problems:
                    table[name] = "VIOLATED (trace)"
        if self.violation is not None:
            table[self.violation.prop] = "VIOLATED"
        return table


def config_for(profile: Profile, workers: int, bounds: Bounds, mode: Mode) -> Config:
    """The model configuration a target claims (``mode`` already resolved from ``auto``)."""
    private = mode is Mode.REUSEPORT and profile.kind == "gunicorn" and profile.reuse_port
    return Config(
        mode=mode,
        workers=workers,
        worker_connections=min(profile.worker_connections, max(bounds.connections, 1)),
        backlog=bounds.connections + 1,
        parent_death=profile.parent_death,
        parent_death_bound=profile.parent_death_bound or 0.0,
        defer_accept=profile.pinned_defer,
        private_reuseport=private,
        bounds=bounds if profile.upgrade_signal else replace(bounds, upgrades=0),
    )


def resolve_mode(profile: Profile, workers: int) -> tuple[Mode, bool]:
    """The mode to model and whether its reuseport sockets are private. The target is started
    once first (a preflight: a target that cannot start fails here, before Hypothesis runs), and
    ``auto`` is inferred from /proc (:func:`~forkshare.conformance.observe.sharing_mode.infer_mode`).

    Raises:
        TargetFailedToStartError: the probe start failed.
        ProfileError: the inferred mode is one the model does not know.
    """
    from forkshare.conformance.observe.sharing_mode import SharingMode, infer_mode
    from forkshare.conformance.verify.errors import ProfileError

    backend = TargetBackend(Config(workers=workers), profile)
    try:
        snap = backend.start().wait_for_workers(workers)
        inferred = infer_mode(snap).mode
    finally:
        backend.close()
    if profile.mode != AUTO:
        return Mode(profile.mode), False
    if inferred is SharingMode.REUSEPORT_PRIVATE:
        return Mode.REUSEPORT, True
    if inferred.value not in {m.value for m in Mode}:
        raise ProfileError(
            f"cannot infer the sharing mode of {profile.name}: set mode in its profile"
        )
    return Mode(inferred.value), False


# --------------------------------------------------------------------------- fixed steps


def run_steps(config: Config, backend: TargetBackend, steps: Sequence[Step]) -> None:
    """Play ``steps`` through the model and the target, checking as the machine does.

    Raises:
        NonconformanceError: the first property broken, or a step the model does not enable.
    """
    machine = build_machine(config, lambda _: backend)()
    try:
        for name, args in steps:
            if name == SETTLE[0]:
                machine.settle()
            else:
                action = ACTIONS[name]
                args = resolve(backend, args, machine.states)
                if not any(action.guard(config, s, *args) for s in machine.states):
                    raise NonconformanceError(
                        "replay", f"{name}{args} is not enabled here", machine.steps
                    )
                machine.take(action, cast("st.DataObject", _Fixed(args)))
            machine.every_invariant_holds()
        if backend.registered:
            finding = stall_finding(backend, machine.states)
            if finding:
                backend.findings.append(finding)
    finally:
        machine.teardown()


class _Fixed:
    """Stands in for Hypothesis's data object: always draws the given arguments."""

    def __init__(self, args: tuple[int, ...]) -> None:
        self.args = args

    def draw(self, strategy: object) -> tuple[int, ...]:
        return self.args


# --------------------------------------------------------------------------- diagnosis


def diagnose(config: Config, history: Sequence[Observed]) -> str:
    """The property a mismatch breaks: see the module's Discussion."""
    for alternative, prop in alternatives(config):
        if _explains(alternative, history):
            return prop
    return MISMATCH


def alternatives(config: Config) -> list[tuple[Config, str]]:
    """The configurations :func:`diagnose` tries, each with the property it breaks: the other
    parent-death policy, then each of the model's unsafe variants of the claimed mode that the
    configuration does not already have."""
    other = (
        ParentDeath.ORPHANS_SERVE
        if config.parent_death is ParentDeath.WORKERS_EXIT
        else ParentDeath.WORKERS_EXIT
    )
    found = [(replace(config, parent_death=other), "orphans_exit_with_master")]
    for variant in VARIANTS.values():
        if variant.mode is not config.mode:
            continue  # another mode's design (its fields may not even apply to this mode)
        unsafe = variant.apply(config)
        if unsafe != config:
            found.append((unsafe, variant.expected))
    return found


def _explains(config: Config, history: Sequence[Observed]) -> bool:
    states: frozenset[System] = frozenset({initial_state()})
    for observed in history:
        name, args = observed.step
        if name in ACTIONS and ACTIONS[name].kind is Kind.ENVIRONMENT:
            action = ACTIONS[name]
            states = frozenset(
                succ
                for s in states
                if action.guard(config, s, *args)
                for succ in action.successors(config, s, args)
            )
        closed = internal_closure(config, states)
        if closed is None:
            return False
        passfd = config.mode is Mode.PASSFD
        states = frozenset(s for s in closed if of_state(s, passfd) == observed.record)
        if not states:
            return False
    return True


# --------------------------------------------------------------------------- the random run


Progress = Callable[[int, float], None]
"""Called after every step with the steps so far and the seconds elapsed."""


def verify(
    profile: Profile,
    *,
    workers: int = 2,
    examples: int = 10,
    steps: int = 12,
    bounds: Bounds = DEFAULT_BOUNDS,
    shrink: bool = True,
    progress: Progress | None = None,
    scenario: Sequence[Step] | None = None,
    config: Config | None = None,
    derandomize: bool = False,
) -> Result:
    """Verify ``profile``'s target: a Hypothesis run, or the fixed ``scenario`` if given.

    Raises:
        TargetFailedToStartError: the target did not start (exit 3).
        ProfileError: the profile cannot be modelled (exit 2).
    """
    if config is None:
        mode, _ = resolve_mode(profile, workers)
        config = config_for(profile, workers, bounds, mode)
    elif scenario is None:
        resolve_mode(profile, config.workers)  # the preflight start
    result = Result(profile.name, config)
    backends: list[TargetBackend] = []
    started = time.monotonic()

    def factory(cfg: Config) -> TargetBackend:
        backend = _CountingBackend(cfg, profile, result, started, progress)
        backends.append(backend)
        return backend

    try:
        if scenario is not None:
            run_steps(config, factory(config), scenario)
        else:
            run_state_machine_as_test(
                build_machine(config, factory),
                settings=_settings(examples, steps, shrink, derandomize),
            )
    except Exception as error:  # Hypothesis may wrap a flaky failure in a group
        failure = _nonconformance(error)
        if failure is None:
            raise
        result.violation = _violation(config, failure, backends[-1])
    result.seconds = time.monotonic() - started
    for backend in backends:
        result.findings.extend(getattr(backend, "findings", []))
        result.traces.extend(
            check_trace(path, config.mode) for path in backend.trace_files if path.exists()
        )
    return result


def run_conformance(profile: Profile, settings: settings | None = None, workers: int = 2) -> None:
    """Run the verifier's state machine against ``profile``'s target inside a test.

    Raises:
        NonconformanceError: the target broke a property (after shrinking, named by property).
    """
    mode, _ = resolve_mode(profile, workers)
    config = config_for(profile, workers, DEFAULT_BOUNDS, mode)
    machine = build_machine(config, lambda cfg: TargetBackend(cfg, profile))
    run_state_machine_as_test(machine, settings=settings or _settings(5, 10, True))


SHRINK_SECONDS = 30
"""Shrinking budget: every shrink attempt restarts a real server, and Hypothesis's own cap is
five minutes (``MAX_SHRINKING_SECONDS``, an internal constant with no public setting)."""


def _settings(examples: int, steps: int, shrink: bool, derandomize: bool = False) -> settings:
    from hypothesis.internal.conjecture import engine

    engine.MAX_SHRINKING_SECONDS = SHRINK_SECONDS
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if shrink else [])
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        phases=phases,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        derandomize=derandomize,
    )


def _nonconformance(error: BaseException) -> NonconformanceError | None:
    """The NonconformanceError inside ``error`` (itself, a member of a group, or its cause)."""
    if isinstance(error, NonconformanceError):
        return error
    for inner in getattr(error, "exceptions", ()):
        found = _nonconformance(inner)
        if found is not None:
            return found
    cause = error.__cause__ or error.__context__
    return _nonconformance(cause) if cause is not None else None


def _violation(config: Config, failure: NonconformanceError, backend: TargetBackend) -> Violation:
    prop = failure.prop
    if prop == MISMATCH:
        prop = diagnose(config, backend.history)
    last = backend.history[-1] if backend.history else None
    return Violation(
        prop=prop,
        message=str(failure),
        steps=failure.steps,
        observed=last.record.describe() if last else "",
        allowed=sorted(r.describe() for r in last.allowed) if last else [],
    )


class _CountingBackend(TargetBackend):
    """A target backend that counts steps for the progress display."""

    def __init__(
        self,
        config: Config,
        profile: Profile,
        result: Result,
        started: float,
        progress: Progress | None,
    ) -> None:
        super().__init__(config, profile, Settling())
        self._result = result
        self._started = started
        self._progress = progress

    def allowed(self, candidates: frozenset[System]) -> frozenset[System]:
        """Count the step, then settle as usual."""
        found = super().allowed(candidates)
        self._result.steps += 1
        if self._progress is not None:
            self._progress(self._result.steps, time.monotonic() - self._started)
        return found
