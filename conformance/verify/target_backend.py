"""A real server behind the state machine: environment actions performed on it, /proc compared.

:class:`TargetBackend` implements :class:`~forkshare.conformance.verify.machine.Backend`. How each
environment action of the model is performed is found in one table, :data:`PERFORMERS`, keyed by
the action's name: ``start_master`` launches the target (in its own process group, on a fresh
port); ``connect``, ``send_request`` and ``close_connection`` use
:class:`~forkshare.conformance.observe.client.Client`; the other environment actions are signals
(SIGKILL, SIGSTOP, SIGCONT to a worker; the profile's reload, graceful, fast, upgrade signals or
SIGKILL to a master). After each step :meth:`TargetBackend.allowed` polls /proc
until the target's :class:`~forkshare.conformance.verify.abstraction.Abstract` record is one the model
allows and has stayed the same for a quiet window, or until a deadline.

Discussion:
    *Which real process is model worker 3?* Actions take model pids. Within a role and a stopped
    status, model pids and real pids both grow with fork order (the model's next pid is above
    every live one; Linux hands out increasing pids until they wrap), so the k-th model worker of
    a category is taken to be the k-th real one. The comparison itself never relies on this (it
    compares multisets, :mod:`~forkshare.conformance.verify.abstraction`); only the choice of which
    process gets the signal does, and every choice inside one category is symmetric for the
    model.

    *A master takes its signal before the next step.* The model performs a master's whole
    reaction to a signal in the step that sends it. A real master reacts later: its handler sets
    a flag that its loop reads, or it blocks its signals across a re-exec (K20) and only then
    forks the reload's new generation. A second signal sent in that window (a stop right after
    a reload) would show the reload's work after the stop, which the model forbids though the
    server lost nothing. So after signalling a master the performer waits, up to
    :data:`MASTER_TAKES_SIGNAL` seconds, until the signal is no longer pending and the master
    sleeps again (twice in a row); a master that never sleeps only costs that time.

    *Settling.* A real server reaches the model's next state through internal steps we do not
    see, at its own pace. Polling until the record is allowed *and* quiet for ``quiet`` seconds
    accepts intermediate states the model also allows (a worker not yet respawned); the
    following step closes over the model's internal actions again, so nothing is lost but
    liveness, which this verifier does not claim to check (see the reports' closing notes).
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from forkshare.conformance.observe.client import Client
from forkshare.conformance.observe.deadline import poll_until, wait_until
from forkshare.conformance.observe.errors import (
    NoSuchProcessError,
    NothingListensError,
    ProcAccessDeniedError,
)
from forkshare.conformance.observe.launch import RunningTarget, free_port, launch
from forkshare.conformance.observe.observer import ServerSnapshot, snapshot
from forkshare.conformance.observe.procfs import read_lock_holders, read_stat, read_status
from forkshare.conformance.observe.role import Role
from forkshare.conformance.verify.abstraction import Abstract, of_state, record, role_in, role_of
from forkshare.conformance.verify.coverage import Coverage
from forkshare.conformance.verify.machine import SETTLE, NonconformanceError, Step
from forkshare.conformance.verify.profile import Profile
from forkshare.conformance.verify.scenarios import HOLDER
from forkshare.conformance.verify.target import command_line, trace_path
from forkshare.conformance.verify.timing import Bounds as TimedBounds
from forkshare.conformance.verify.timing import Context, Timekeeper
from forkshare.conformance.verify.view import ViewBuilder
from forkshare.model.actions import ACTIONS
from forkshare.model.config import Config, Mode
from forkshare.model.liveness import LIVENESS
from forkshare.model.monitors import Moment, first_broken
from forkshare.model.observation import ClientView, Observation, Outcome
from forkshare.model.state import System
from forkshare.model.table import Kind


@dataclass(frozen=True, slots=True)
class Settling:
    """How long to wait for a target to settle after a step."""

    timeout: float = 3.0
    """Give up after this long and compare the last record."""
    quiet: float = 0.1
    """An allowed record must stay unchanged this long."""
    interval: float = 0.02


@dataclass(slots=True)
class Observed:
    """One step's evidence, kept for the report and the diagnosis."""

    step: Step
    record: Abstract
    allowed: frozenset[Abstract]


@dataclass(slots=True)
class Live:
    """One launched target and what was seen of it."""

    target: RunningTarget
    directory: Path
    views: ViewBuilder


class TargetBackend:
    """A real target behind the machine (see the module docstring)."""

    drives_internal = False

    def __init__(
        self,
        config: Config,
        profile: Profile,
        settling: Settling = Settling(),
        base: Path | None = None,
        bounds: TimedBounds | None = None,
    ) -> None:
        self.config = config
        self.profile = profile
        self.settling = settling
        self.base = base
        self.port = free_port()
        self.clients: list[Client] = []
        self.live: Live | None = None
        self.history: list[Observed] = []
        self.moments: list[Moment] = [Moment(None, Observation((), (), ()))]
        self.timekeeper = Timekeeper(bounds or timed_bounds(profile))
        self.trace_files: list[Path] = []
        self._step: Step = ("initial", ())
        self._real_step: Step | None = None
        self._signalled = 0
        self._reachable = AcceptReachability(config, {})
        self.registered = 0
        self._passfd = config.mode is Mode.PASSFD
        self.findings: list[str] = []
        self.steps: list[Step] = []
        """The machine's steps so far (the machine shares its list), for the violations raised here."""
        self.coverage = Coverage()
        self.failed = False
        """A violation was raised: the run ends, :meth:`drain` measures nothing more."""

    # ------------------------------------------------------------------ actions

    def perform(self, step: Step, states: frozenset[System]) -> bool:
        """Perform environment ``step`` on the target with its :data:`PERFORMERS` entry.

        Returns:
            False when the process the step targets has no real counterpart any more (a signal
            to it would reach no one); True otherwise.

        Raises:
            TargetFailedToStartError: ``start_master`` could not start the target (exit 3).
        """
        self._step = step
        name, args = step
        self._real_step = None
        if step == SETTLE:
            return True
        self._signalled = 0
        reached = PERFORMERS[name](self, args, states)
        if reached:
            self.coverage.performed[name] += 1
            # The monitors read the step with the real pid it reached.
            self._real_step = (name, (self._signalled,)) if self._signalled else (name, args)
        return reached

    def start(self) -> RunningTarget:
        """Launch the target on the backend's port, in a fresh scratch directory.

        Raises:
            TargetFailedToStartError: the target did not start (exit 3).
        """
        directory = Path(tempfile.mkdtemp(prefix="forkshare-verify-", dir=self.base))
        argv = command_line(self.profile, self.port, self.config.workers, directory)
        target = launch(argv, self.port, output_dir=directory)
        self.live = Live(target, directory, ViewBuilder(target.group.pid, self.port))
        _RUNNING.add(self)
        trace = trace_path(self.profile, self.port, self.config.workers, directory)
        if trace is not None:
            self.trace_files.append(trace)
        return target

    def send_signal(self, signum: int, pid: int) -> None:
        """Send ``signum`` to real process ``pid`` (gone already: nothing to do); a master we
        SIGKILL is reaped, since we are its parent."""
        self._signalled = pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        live = self.live
        if signum == signal.SIGKILL and live is not None and pid == live.target.group.pid:
            live.target.group.process.wait()

    def real_pid(self, model_pid: int, states: frozenset[System]) -> int | None:
        """The real process playing model process ``model_pid`` (see Discussion), or None when
        the target has no process in that category (the step's signal would reach no one).

        Categories are a process's family (master, or worker whether orphaned or not: a master
        may exit between the observation and the step, F8) and whether it is stopped."""
        view = self.look()
        for state in sorted(states, key=repr):
            proc = state.process(model_pid)
            if proc is None or not proc.is_alive:
                continue
            category = (_family(role_of(state, model_pid)), proc.stopped)
            peers = sorted(
                p.pid
                for p in state.processes
                if p.is_alive and (_family(role_of(state, p.pid)), p.stopped) == category
            )
            real = sorted(
                p.pid
                for p in view.processes
                if p.alive and (_family(role_in(p)), p.stopped) == category
            )
            index = peers.index(model_pid)
            if index < len(real):
                return real[index]
        return None

    # ------------------------------------------------------------------ observation

    def allowed(self, candidates: frozenset[System]) -> frozenset[System]:
        """The candidates whose record equals the target's, once it has settled; on the way,
        every timed property is measured and, once settled, every monitor is run.

        Raises:
            NonconformanceError: a monitor or a timed property names a broken property.
        """
        by_record: dict[Abstract, set[System]] = {}
        for state in candidates:
            by_record.setdefault(of_state(state, self._passfd), set()).add(state)
        reachable = AcceptReachability(self.config, by_record)
        self._reachable = reachable
        view = self.look()
        self._note(view, self._real_step)
        deadline = time.monotonic() + self.settling.timeout
        quiet_since = time.monotonic()
        while True:
            current = record(view, self._passfd)
            self._time(view, reachable.of(current))
            now = time.monotonic()
            if current in by_record and now - quiet_since >= self._quiet(view):
                break
            if now >= deadline:
                break
            time.sleep(self.settling.interval)
            newer = self.look()
            if record(newer, self._passfd) != current:
                quiet_since = time.monotonic()
            view = newer
            self._note(view, None)
        self.history.append(Observed(self._step, current, frozenset(by_record)))
        self.coverage.records.add(current)
        return frozenset(by_record.get(current, ()))

    def _note(self, view: Observation, step: Step | None) -> None:
        """Add ``view`` to the monitors' history when something changed (or a step was
        performed) and let the monitors judge it, so a break that the server undoes before it
        settles is still seen.

        Raises:
            NonconformanceError: a monitor names a broken property.
        """
        if step is None and view == self.moments[-1].view:
            return
        self.moments.append(Moment(step, view))
        self._judge()

    def _quiet(self, view: Observation) -> float:
        """How long an allowed record must hold still: not at all while the tester holds a
        process stopped (it is then deliberately keeping the server still, and a request in a
        stopped worker's hands must not wait out the worker's read timeout)."""
        held = any(p.alive and p.stopped for p in view.processes)
        return 0.0 if held else self.settling.quiet

    def pause(self, seconds: float) -> None:
        """Let ``seconds`` pass, measuring the timed properties all along (may raise)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            view = self.look()
            self._time(view, self._reachable.of(record(view, self._passfd)))
            time.sleep(self.settling.interval)

    def drain(self) -> None:
        """At the end of a run: let every running clock end, or run out (bounded by the largest
        bound), so a worker never replaced or a stop that never ends is still caught.

        Raises:
            NonconformanceError: a timed property ran past its bound.
        """
        if self.live is None or self.failed:
            return  # the first property broken is the verdict; nothing more is measured
        longest = _longest(self.timekeeper)
        deadline = time.monotonic() + longest + 0.5
        while self.timekeeper.pending() and time.monotonic() < deadline:
            self._time(self.look(), accept_reachable=False)
            time.sleep(self.settling.interval * 5)

    def _time(self, view: Observation, accept_reachable: bool) -> None:
        ctx = Context(
            workers=self.config.workers,
            worker_connections=self.config.worker_connections,
            mode=self.config.mode,
            parent_death=self.config.parent_death,
            accept_reachable=accept_reachable,
        )
        probe = [*self.moments, Moment(self._real_step, view)]
        found = self.timekeeper.observe(time.monotonic(), probe, ctx)
        if found is not None:
            self._raise(*found)

    def _judge(self) -> None:
        found = first_broken(self.config, self.moments)
        if found is not None:
            self._raise(*found)

    def _raise(self, prop: str, evidence: str) -> None:
        self.failed = True
        last = self.history[-1] if self.history else None
        raise NonconformanceError(
            prop,
            evidence,
            self.steps,
            observed=last.record.describe() if last else "",
            allowed=sorted(r.describe() for r in last.allowed) if last else [],
        )

    def look(self) -> Observation:
        """The target now, as the model sees a state (real pids and inodes)."""
        live = self.live
        if live is None:
            return Observation((), (), tuple(live_client(i, c) for i, c in enumerate(self.clients)))
        return live.views.build(self._snapshot(live), self.clients)

    def observe(self) -> Abstract:
        """The target's record now."""
        return record(self.look(), self._passfd)

    def _snapshot(self, live: Live) -> ServerSnapshot | None:
        root = live.target.group.pid
        stat = read_stat(root)
        alive = stat is not None and stat.state not in ("Z", "X")
        try:
            return snapshot(root_pid=root if alive else None, port=self.port)
        except (NothingListensError, NoSuchProcessError, ProcAccessDeniedError):
            # The server is between states (its last holder exiting): nothing listens now.
            return None

    def close(self) -> None:
        """Close the clients, kill the target's process group and every process seen."""
        _RUNNING.discard(self)
        for client in self.clients:
            client.close()
        if self.live is not None:
            with contextlib.suppress(ProcessLookupError):
                self.live.target.group.stop(
                    grace=1.0, extra_pids=tuple(self.live.views.first_parent)
                )


_RUNNING: weakref.WeakSet[TargetBackend] = weakref.WeakSet()
"""Backends whose target is started and not yet closed (see :func:`close_all`)."""


def close_all() -> None:
    """Stop every target still running: what ``forkshare verify`` does on Ctrl-C, when an
    interrupted run may not have reached its teardown."""
    for backend in list(_RUNNING):
        backend.close()


def _family(role: Role) -> Role:
    """Workers and orphans are one family when choosing whom a signal is for."""
    return Role.WORKER if role is Role.ORPHAN else role


def _longest(keeper: Timekeeper) -> float:
    bounds = keeper.bounds
    return max(
        bounds.respawn,
        bounds.service,
        bounds.mutex,
        bounds.orphans,
        bounds.graceful,
        bounds.shutdown,
    )


def live_client(cid: int, client: Client) -> ClientView:
    """A client before any server runs: its own outcome only."""
    return ClientView(cid, client.outcome(), 0, 0, client.requested)


def timed_bounds(profile: Profile) -> TimedBounds:
    """The timed properties' bounds a profile sets (the orphans' bound: its parent-death bound,
    or the default of ``orphans_exit_within_bound``)."""
    orphans = profile.parent_death_bound
    return TimedBounds(
        respawn=profile.respawn_bound,
        service=profile.service_bound,
        mutex=profile.mutex_bound,
        orphans=orphans if orphans else LIVENESS["orphans_exit_within_bound"].bound,
        graceful=profile.graceful_bound,
        shutdown=profile.shutdown_bound,
    )


class AcceptReachability:
    """Whether every model state with a given record can accept a queued connection by
    internal steps alone (computed once per record)."""

    def __init__(self, config: Config, by_record: dict[Abstract, set[System]]) -> None:
        self.config = config
        self.by_record = by_record
        self.known: dict[Abstract, bool] = {}

    def of(self, current: Abstract) -> bool:
        """False for a record the model does not allow (nothing is owed on unexplained ground)."""
        if current not in self.known:
            states = self.by_record.get(current, set())
            self.known[current] = bool(states) and all(
                accept_reachable(self.config, s) for s in states
            )
        return self.known[current]


def accept_reachable(config: Config, state: System) -> bool:
    """Some internal path from ``state`` reaches an enabled ``accept`` (bounded search)."""
    seen = {state}
    frontier = [state]
    while frontier and len(seen) < 2000:
        current = frontier.pop()
        if any(True for _ in ACTIONS["accept"].arguments(config, current)):
            return True
        for action in ACTIONS.values():
            if action.kind is not Kind.INTERNAL or action.name == "accept":
                continue
            for args in action.arguments(config, current):
                for succ in action.successors(config, current, args):
                    if succ not in seen:
                        seen.add(succ)
                        frontier.append(succ)
    return False


def resolve(
    backend: TargetBackend, args: tuple[int, ...], states: frozenset[System]
) -> tuple[int, ...]:
    """``args`` with :data:`HOLDER` replaced by the model pid of the registered worker.

    Raises:
        WaitTimedOutError: no single worker registers the listener within the settling timeout.
    """
    if HOLDER not in args:
        return args
    real = wait_until(
        lambda: _registered_worker(backend),
        backend.settling.timeout,
        "one worker registers the listener",
    )
    backend.registered = real
    view = backend.look()
    workers = sorted(
        p.pid for p in view.processes if p.alive and not p.stopped and role_in(p) is Role.WORKER
    )
    state = min(states, key=repr)
    peers = sorted(
        p.pid
        for p in state.processes
        if p.is_alive and not p.stopped and role_of(state, p.pid) is Role.WORKER
    )
    model = peers[workers.index(real)]
    return tuple(model if a == HOLDER else a for a in args)


def _registered_worker(backend: TargetBackend) -> int | None:
    """The one worker whose epoll set holds the listener (nginx's mutex holder), else the one
    worker holding a file lock (an flock/fcntl accept mutex, /proc/locks), else None."""
    snap = backend._snapshot(backend.live) if backend.live is not None else None
    if snap is None:
        return None
    workers = {p.pid for p in snap.with_role(Role.WORKER)}
    registered = {pid for lst in snap.listeners for pid in snap.registrants(lst.inode)} & workers
    if len(registered) == 1:
        return registered.pop()
    locking = set(read_lock_holders()) & workers
    return locking.pop() if len(locking) == 1 else None


def stall_finding(
    backend: TargetBackend, states: frozenset[System], hold: float = 1.5
) -> str | None:
    """After the registered worker was stopped and a client connected: if the client stays queued
    for ``hold`` seconds and the model allows it (some candidate's mutex is held by the stopped
    worker, so no accept is enabled), the finding as one sentence; else None."""
    deadline = time.monotonic() + hold
    while time.monotonic() < deadline:
        record = backend.observe()
        if (
            not record.clients
            or record.clients[-1] != (Outcome.PENDING, "")
            or not any(record.queues)
        ):
            return None
        time.sleep(backend.settling.interval)
    stalled = [s for s in states if s.mutex and (p := s.process(s.mutex)) is not None and p.stopped]
    if not stalled:
        return None
    return (
        f"a stopped mutex holder stalls every accept: observed (client queued {hold:.1f} s, "
        f"queue {max(record.queues)}); the model allows it (the stopped holder keeps the mutex)"
    )


# ------------------------------------------------------------------ the performers

Performer = Callable[[TargetBackend, tuple[int, ...], frozenset[System]], bool]
"""Performs one environment action on the target: (backend, the action's arguments, the model's
states before it) -> False when the process it targets has no real counterpart."""


def _start_master(backend: TargetBackend, args: tuple[int, ...], states: frozenset[System]) -> bool:
    backend.start()
    return True


def _connect(backend: TargetBackend, args: tuple[int, ...], states: frozenset[System]) -> bool:
    backend.clients.append(Client(backend.port))
    return True


def _send_request(backend: TargetBackend, args: tuple[int, ...], states: frozenset[System]) -> bool:
    backend.clients[args[0]].send_request()  # the model's cid is the client's index
    return True


def _close_connection(
    backend: TargetBackend, args: tuple[int, ...], states: frozenset[System]
) -> bool:
    backend.clients[args[0]].close()
    return True


def _signal(signal_of: Callable[[Profile], int]) -> Performer:
    """A performer sending ``signal_of(profile)`` to the real process playing ``args[0]``."""

    def perform(backend: TargetBackend, args: tuple[int, ...], states: frozenset[System]) -> bool:
        pid = backend.real_pid(args[0], states)
        if pid is None:
            return False
        backend.send_signal(signal_of(backend.profile), pid)
        return True

    return perform


MASTER_TAKES_SIGNAL = 2.0
"""Seconds a master is given to take a signal and sleep again before the next step (Discussion)."""


def _master_signal(signal_of: Callable[[Profile], int]) -> Performer:
    """:func:`_signal` to a master, then a bounded wait until it took the signal (Discussion)."""
    send = _signal(signal_of)

    def perform(backend: TargetBackend, args: tuple[int, ...], states: frozenset[System]) -> bool:
        if not send(backend, args, states):
            return False
        pid, signum, idle = backend._signalled, signal_of(backend.profile), [0]

        def took_it() -> bool:
            status = read_status(pid)
            if status is None or status.state in "ZX":
                calm = True  # gone: nothing more to wait for
            else:
                calm = status.state == "S" and not status.has_pending(signum)
            idle[0] = idle[0] + 1 if calm else 0
            return idle[0] >= 2

        poll_until(took_it, MASTER_TAKES_SIGNAL, interval=0.01)
        return True

    return perform


PERFORMERS: dict[str, Performer] = {
    "start_master": _start_master,
    "connect": _connect,
    "send_request": _send_request,
    "close_connection": _close_connection,
    "kill_worker": _signal(lambda _: signal.SIGKILL),
    "stop_worker": _signal(lambda _: signal.SIGSTOP),
    "continue_worker": _signal(lambda _: signal.SIGCONT),
    "reload": _master_signal(lambda profile: profile.reload_signal),
    "graceful_shutdown": _master_signal(lambda profile: profile.graceful_signal),
    "fast_shutdown": _master_signal(lambda profile: profile.fast_signal),
    "upgrade": _master_signal(lambda profile: profile.upgrade_signal or signal.SIGUSR2),
    "kill_master": _signal(lambda _: signal.SIGKILL),
}
"""How each environment action of :data:`~forkshare.model.actions.ACTIONS` is performed on a real
target, by the action's name (a test ties the keys to the model's environment actions)."""
