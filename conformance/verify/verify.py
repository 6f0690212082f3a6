"""Verifying a target: discovery, the scenarios, the random walks, replays, and the verdict.

:func:`verify` is what ``forkshare verify`` runs. It first discovers what the profile leaves
open (:mod:`~forkshare.conformance.verify.discovery`: the sharing mode, how fast workers notice
their master's death, TCP_DEFER_ACCEPT; a one-process server is judged "not a prefork server"
there), then plays every scenario of :mod:`~forkshare.conformance.verify.scenarios` that fits,
then random walks (Hypothesis), all through the same machine. After every step the model's
monitors and the timed properties judge what was observed; the first property broken ends the
run with its name and evidence. :func:`run_conformance` is the entry point for third parties'
test suites, in the shape of Hypothesis's ``run_conformance_test``.

Verdicts (:attr:`Result.verdict`): ``conforms``; ``violates PROPERTY`` (exit 1); ``unexplained
behaviour`` (exit 4: the target did something the model does not allow and no property explains
it — never reported as a violation); ``not a prefork server`` (exit 5).

Discussion:
    *Naming the property behind an unexplained observation.* Monitors see most breaks directly.
    When none does and no model state matches, the observed history is replayed through the model
    under each alternative of the claimed configuration: the other parent-death policy, then the
    unsafe designs of :data:`~forkshare.model.variants.VARIANTS` for the claimed mode. One that
    explains every observation names the property (the invariant that design breaks), with that
    as its evidence. Only when none does is the verdict "unexplained behaviour".

    *Output hygiene.* Hypothesis reports through ``print``; the run redirects standard output to
    standard error, so ``--json`` writes exactly one document on stdout.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyFailure, FlakyStrategyDefinition, Unsatisfiable
from hypothesis.stateful import run_state_machine_as_test

from forkshare.conformance.observe.deadline import poll_until
from forkshare.conformance.observe.observer import ServerSnapshot
from forkshare.conformance.observe.role import Role as ObservedRole
from forkshare.conformance.verify.abstraction import of_state
from forkshare.conformance.verify.coverage import Coverage
from forkshare.conformance.verify.errors import ClosureTooLargeError
from forkshare.conformance.verify.machine import (
    SETTLE,
    UNEXPLAINED,
    NonconformanceError,
    Step,
    build_machine,
    internal_closure,
)
from forkshare.conformance.verify.profile import AUTO, Profile
from forkshare.conformance.verify.scenarios import (
    BEGIN,
    PAUSE,
    SCENARIO_BOUNDS,
    SCENARIOS,
    Scenario,
)
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
from forkshare.model.liveness import LIVENESS
from forkshare.model.monitors import MONITORS
from forkshare.model.state import System
from forkshare.model.table import Kind
from forkshare.model.variants import VARIANTS

DEFAULT_BOUNDS = Bounds(
    connections=3, kills=2, stops=2, reloads=1, shutdowns=1, master_kills=1, upgrades=0
)
"""What a random walk may do (the scenarios' bounds are the same)."""

PAUSE_FACTOR = 1.5
"""A scenario's pause lasts this many service bounds (long enough to see a stalled queue)."""


@dataclass(slots=True)
class Violation:
    """The first property the target broke (or the unexplained behaviour), with the evidence."""

    prop: str
    message: str
    steps: list[Step]
    observed: str
    allowed: list[str]
    found_by: str = ""
    """The scenario's name, or "random walk"."""

    @property
    def unexplained(self) -> bool:
        """True when no property explains what the target did."""
        return self.prop == UNEXPLAINED


@dataclass(slots=True)
class Result:
    """What a verification found."""

    target: str
    config: Config
    steps: int = 0
    seconds: float = 0.0
    violation: Violation | None = None
    not_prefork: str = ""
    """Why the target is not a prefork server (empty when it is)."""
    findings: list[str] = field(default_factory=list)
    discovered: list[str] = field(default_factory=list)
    """What discovery found, one line each."""
    traces: list[TraceReport] = field(default_factory=list)
    coverage: Coverage = field(default_factory=Coverage)
    scenarios: list[str] = field(default_factory=list)
    """Names of the scenarios played."""
    profile: Profile | None = None
    """The profile the run used, with what discovery settled filled in."""
    discovery: dict[str, Any] | None = None
    """Discovery's findings (``--json``)."""
    profile_comments: dict[str, str] = field(default_factory=dict)
    """What discovery measured, per profile key (``--profile-out`` writes them as comments)."""

    @property
    def steps_per_second(self) -> float:
        """Steps (actions performed and checked) per second of wall time."""
        return self.steps / self.seconds if self.seconds else 0.0

    @property
    def verdict(self) -> str:
        """``conforms``, ``violates PROPERTY``, ``unexplained behaviour`` or ``not a prefork
        server``."""
        if self.not_prefork:
            return "not a prefork server"
        if self.violation is None:
            return "conforms"
        if self.violation.unexplained:
            return "unexplained behaviour"
        return f"violates {self.violation.prop}"

    @property
    def exit_code(self) -> int:
        """0 conforms, 1 violates, 4 unexplained, 5 not a prefork server."""
        if self.not_prefork:
            return 5
        if self.violation is None:
            return 0
        return 4 if self.violation.unexplained else 1

    def verdicts(self) -> dict[str, str]:
        """Property → ``holds``, ``VIOLATED``, ``not claimed`` or ``not observable``, for every
        invariant and every timed property, and what the trace validation checked."""
        table: dict[str, str] = {}
        for inv in INVARIANTS.values():
            if not inv.applies(self.config):
                table[inv.name] = "not claimed"
            elif MONITORS[inv.name].check is None:
                table[inv.name] = "not observable"
            else:
                table[inv.name] = "holds"
        for name in LIVENESS:
            table[name] = "holds"
        if self.config.parent_death is ParentDeath.ORPHANS_SERVE:
            table["orphans_exit_within_bound"] = "not claimed"
        for report in self.traces:
            for name, problems in report.problems.items():
                if problems:
                    table[name] = "VIOLATED (trace)"
        if self.violation is not None and not self.violation.unexplained:
            table[self.violation.prop] = "VIOLATED"
        return table


def config_for(profile: Profile, workers: int, bounds: Bounds, mode: Mode, private: bool) -> Config:
    """The model configuration a target claims (``mode`` already resolved from ``auto``)."""
    return Config(
        mode=mode,
        workers=workers,
        worker_connections=min(profile.worker_connections, max(bounds.connections, 1)),
        backlog=bounds.connections + 1,
        parent_death=profile.parent_death,
        parent_death_bound=profile.parent_death_bound or 0.0,
        defer_accept=profile.pinned_defer,
        private_reuseport=private and mode is Mode.REUSEPORT,
        workers_keep_all_clones=profile.reuseport_clones != "own",
        bounds=bounds if profile.upgrade_signal else replace(bounds, upgrades=0),
    )


# --------------------------------------------------------------------------- discovery


@dataclass(frozen=True, slots=True)
class Claim:
    """What discovery settled: the profile with nothing left ``auto``, and what it found."""

    profile: Profile
    mode: Mode
    private_reuseport: bool
    not_prefork: str = ""
    lines: tuple[str, ...] = ()
    findings: tuple[str, ...] = ()
    report: dict[str, Any] | None = None
    """Discovery's findings as JSON (for ``--json``)."""
    comments: dict[str, str] = field(default_factory=dict)
    """Profile key → what discovery measured about it (comments for ``--profile-out``)."""


def settle_claim(profile: Profile, workers: int, discover: bool = True) -> Claim:
    """Discover what ``profile`` leaves open (or, without discovery, infer only the mode).

    Raises:
        TargetFailedToStartError: the target did not start.
    """
    if not discover:
        mode, private = infer_mode_only(profile, workers)
        return Claim(profile, mode, private)
    from forkshare.conformance.verify import discovery

    found = discovery.discover(profile, workers)
    settled = discovery.apply(profile, found)
    # A server that is not prefork is judged by discovery alone: no mode is needed.
    mode = Mode.POLL if found.not_prefork else Mode(settled.mode)
    return Claim(
        profile=settled,
        mode=mode,
        private_reuseport=found.private_reuseport and mode is Mode.REUSEPORT,
        not_prefork=found.not_prefork or "",
        lines=tuple(found.describe()),
        findings=tuple(discovery.contradictions(profile, found)),
        report=found.to_json(),
        comments=found.comments(),
    )


def infer_mode_only(profile: Profile, workers: int) -> tuple[Mode, bool]:
    """The claimed mode, or the one /proc shows (one start); private reuseport sockets or not.

    Raises:
        TargetFailedToStartError: the target did not start.
    """
    from forkshare.conformance.observe.sharing_mode import SharingMode, infer_mode

    backend = TargetBackend(Config(workers=workers), profile)
    try:
        target = backend.start()
        # Wait (bounded) for the workers; a server with a different count is still judged (the
        # run then shows it), never given up on here.
        snap = poll_until(lambda: _with_workers(target.snapshot(), workers), WORKERS_WAIT)
        inferred = infer_mode(snap if snap is not None else target.snapshot()).mode
    finally:
        backend.close()
    private = inferred is SharingMode.REUSEPORT_PRIVATE
    if profile.mode != AUTO:
        mode = Mode(profile.mode)
        return mode, private and mode is Mode.REUSEPORT
    if private:
        return Mode.REUSEPORT, True
    known = {m.value for m in Mode}
    return (Mode(inferred.value) if inferred.value in known else Mode.POLL), False


WORKERS_WAIT = 5.0
"""Seconds :func:`infer_mode_only` waits for the workers to be up and idle."""


def _with_workers(snap: ServerSnapshot, workers: int) -> ServerSnapshot | None:
    idle = [w for w in snap.with_role(ObservedRole.WORKER) if w.state == "S"]
    return snap if len(idle) >= workers else None


# --------------------------------------------------------------------------- fixed steps


def run_steps(config: Config, backend: TargetBackend, steps: Sequence[Step]) -> None:
    """Play ``steps`` through the model and the target, checking as the machine does; a step
    the model does not enable in any candidate state is skipped (a scenario that does not fit
    what happened).

    Raises:
        NonconformanceError: the first property broken, or an unexplained behaviour.
    """
    machine = build_machine(config, lambda _: backend)()
    try:
        for name, args in steps:
            if name == BEGIN:
                # The first bytes may get the client accepted (TCP_DEFER_ACCEPT holds a silent
                # one back): the model catches up before the next step.
                backend.clients[args[0]].begin_request()
                machine.settle()
                continue
            if name == PAUSE[0]:
                backend.pause(PAUSE_FACTOR * backend.timekeeper.bounds.service)
            if name in (SETTLE[0], PAUSE[0]):
                machine.settle()
                continue
            action = ACTIONS[name]
            args = resolve(backend, args, machine.states)
            if not any(action.guard(config, s, *args) for s in machine.states):
                continue
            machine.take(action, cast("st.DataObject", _Fixed(args)))
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


def diagnose(config: Config, history: Sequence[Observed]) -> tuple[str, str] | None:
    """The property an unexplained history breaks, with the evidence, if an alternative design
    explains it (see the module's Discussion); None otherwise."""
    for alternative, prop, why in alternatives(config):
        if _explains(alternative, history):
            return prop, why
    return None


def alternatives(config: Config) -> list[tuple[Config, str, str]]:
    """The configurations :func:`diagnose` tries, each with the property it breaks and why: under
    a workers-exit claim, orphans that keep serving; then each of the model's unsafe variants
    that fit the claimed mode and that the configuration does not already have."""
    found = []
    if config.parent_death is ParentDeath.WORKERS_EXIT:
        found.append(
            (
                replace(config, parent_death=ParentDeath.ORPHANS_SERVE),
                "orphans_exit_with_master",
                "every observation fits a server whose orphaned workers keep serving",
            )
        )
    for variant in VARIANTS.values():
        if not variant.fits(config.mode):
            continue  # another mode's design (its fields may not even apply to this mode)
        unsafe = variant.apply_to(config)
        if unsafe != config:
            why = f"every observation fits the unsafe design {variant.name!r} ({variant.seen_in})"
            found.append((unsafe, variant.expected, why))
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


# --------------------------------------------------------------------------- the run


Progress = Callable[[int, float, str], None]
"""Called after every step with the steps so far, the seconds elapsed and what is being played."""


@dataclass(frozen=True, slots=True)
class Plan:
    """How much a verification does."""

    workers: int = 2
    examples: int = 6
    steps: int = 10
    scenarios: bool = True
    discover: bool = True
    shrink: bool = True
    derandomize: bool = False
    bounds: Bounds = DEFAULT_BOUNDS


def verify(
    profile: Profile,
    plan: Plan = Plan(),
    *,
    progress: Progress | None = None,
    replay: Sequence[Step] | None = None,
    config: Config | None = None,
) -> Result:
    """Verify ``profile``'s target (see the module docstring); ``replay`` plays fixed steps
    under ``config`` instead (a saved violation).

    Raises:
        TargetFailedToStartError: the target did not start (exit 3).
        ProfileError: the profile cannot be modelled (exit 2).
    """
    started = time.monotonic()
    if config is None:
        claim = settle_claim(profile, plan.workers, plan.discover)
        config = config_for(
            claim.profile, plan.workers, plan.bounds, claim.mode, claim.private_reuseport
        )
        profile = claim.profile
    else:
        claim = Claim(profile, config.mode, config.private_reuseport)
    result = Result(profile.name, config, not_prefork=claim.not_prefork, profile=profile)
    result.discovered.extend(claim.lines)
    result.findings.extend(claim.findings)
    result.discovery = claim.report
    result.profile_comments = dict(claim.comments)
    if result.not_prefork:
        result.seconds = time.monotonic() - started
        return result
    run = _Run(profile, config, result, started, progress)
    with contextlib.redirect_stdout(sys.stderr):
        try:
            if replay is not None:
                run.steps("replay", replay)
            else:
                if plan.scenarios:
                    run.scenarios()
                run.walks(plan)
        except NonconformanceError as failure:
            result.violation = run.violation(failure)
    run.collect()
    result.seconds = time.monotonic() - started
    return result


class _Run:
    """One verification's backends, progress and evidence."""

    def __init__(
        self,
        profile: Profile,
        config: Config,
        result: Result,
        started: float,
        progress: Progress | None,
    ) -> None:
        self.profile = profile
        self.config = config
        self.result = result
        self.started = started
        self.progress = progress
        self.backends: list[TargetBackend] = []
        self.playing = ""

    def backend(self, cfg: Config) -> TargetBackend:
        """A fresh backend (a fresh start of the target) that counts steps for the progress."""
        backend = _CountingBackend(cfg, self.profile, self)
        self.backends.append(backend)
        return backend

    def tick(self) -> None:
        """One more step performed and checked."""
        self.result.steps += 1
        if self.progress is not None:
            self.progress(self.result.steps, time.monotonic() - self.started, self.playing)

    def scenarios(self) -> None:
        """Play every scenario that fits the configuration (raises on the first violation)."""
        for scenario in fitting(self.config):
            self.steps(scenario.name, scenario.steps)
            self.result.scenarios.append(scenario.name)

    def steps(self, name: str, steps: Sequence[Step]) -> None:
        """Play ``steps`` on a fresh start of the target."""
        self.playing = name
        run_steps(replace(self.config, bounds=SCENARIO_BOUNDS), self.backend(self.config), steps)

    def walks(self, plan: Plan) -> None:
        """Hypothesis random walks (shrunk on a violation)."""
        if plan.examples < 1:
            return
        self.playing = "random walk"
        try:
            run_state_machine_as_test(
                build_machine(self.config, self.backend),
                settings=_settings(plan),
            )
        except NonconformanceError:
            raise
        except Unsatisfiable:
            # Every walk was cut short (noted in the coverage): the scenarios still judged.
            if not any(b.coverage.cut_short for b in self.backends):
                raise
        except Exception as error:  # Hypothesis may wrap a flaky failure in a group
            failure = _nonconformance(error)
            if failure is not None:
                raise failure from None
            if not is_divergence(error):
                raise
            self.result.coverage.cut_short.append(DIVERGED)

    def violation(self, failure: NonconformanceError) -> Violation:
        """The report of ``failure``: an unexplained one is diagnosed through the alternatives."""
        prop, message = failure.prop, failure.message
        if prop == UNEXPLAINED and self.backends:
            named = diagnose(self.config, self.backends[-1].history)
            if named is not None:
                prop, message = named[0], f"{named[1]}; first seen: {failure.message}"
        return Violation(
            prop=prop,
            message=message,
            steps=failure.steps,
            observed=failure.observed,
            allowed=failure.allowed,
            found_by=self.playing,
        )

    def collect(self) -> None:
        """Findings, trace validation and coverage from every backend."""
        for backend in self.backends:
            self.result.findings.extend(backend.findings)
            self.result.traces.extend(
                check_trace(path, self.config.mode) for path in backend.trace_files if path.exists()
            )
            coverage = self.result.coverage
            coverage.performed.update(backend.coverage.performed)
            coverage.inferred |= backend.coverage.inferred
            coverage.records |= backend.coverage.records
            coverage.cut_short.extend(backend.coverage.cut_short)


def fitting(config: Config) -> Iterator[Scenario]:
    """The scenarios meant for ``config``'s mode and worker count."""
    return (s for s in SCENARIOS if s.fits(config))


def run_conformance(profile: Profile, settings: settings | None = None, workers: int = 2) -> None:
    """Run the verifier's state machine against ``profile``'s target inside a test.

    Raises:
        NonconformanceError: the target broke a property (after shrinking, named by property).
    """
    claim = settle_claim(profile, workers, discover=False)
    config = config_for(claim.profile, workers, DEFAULT_BOUNDS, claim.mode, claim.private_reuseport)
    machine = build_machine(config, lambda cfg: TargetBackend(cfg, claim.profile))
    try:
        run_state_machine_as_test(machine, settings=settings or _settings(Plan(examples=5)))
    except Exception as error:  # a real target is external state: Hypothesis may call it flaky
        failure = _nonconformance(error)
        if failure is None or failure is error:
            raise
        raise failure from None


SHRINK_SECONDS = 30
"""Shrinking budget: every shrink attempt restarts a real server, and Hypothesis's own cap is
five minutes (``MAX_SHRINKING_SECONDS``, an internal constant with no public setting)."""


def _settings(plan: Plan) -> settings:
    from hypothesis.internal.conjecture import engine

    engine.MAX_SHRINKING_SECONDS = SHRINK_SECONDS
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if plan.shrink else [])
    return settings(
        max_examples=plan.examples,
        stateful_step_count=plan.steps,
        deadline=None,
        database=None,
        phases=phases,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        derandomize=plan.derandomize,
        verbosity=Verbosity.quiet,
    )


DIVERGED = (
    "Hypothesis stopped the random walks: replaying one, the target answered differently (a "
    "real server is not deterministic); the scenarios and the walks before it were judged"
)


def is_divergence(error: BaseException) -> bool:
    """True when ``error`` says only that Hypothesis saw a replayed walk go another way (its
    draws depend on what the target did), with no failure of ours or the target's inside."""
    if isinstance(error, FlakyStrategyDefinition):
        return True
    if isinstance(error, FlakyFailure):
        return all(
            is_divergence(inner) or isinstance(inner, ClosureTooLargeError)
            for inner in error.exceptions
        )
    return False


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


class _CountingBackend(TargetBackend):
    """A target backend that counts steps for the progress display and records coverage."""

    def __init__(self, config: Config, profile: Profile, run: _Run) -> None:
        super().__init__(config, profile, Settling())
        self._run = run

    def allowed(self, candidates: frozenset[System]) -> frozenset[System]:
        """Settle as usual, then count the step."""
        found = super().allowed(candidates)
        self._run.tick()
        return found
