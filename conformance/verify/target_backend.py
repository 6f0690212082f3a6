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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from forkshare.conformance.observe.client import Client
from forkshare.conformance.observe.deadline import wait_until
from forkshare.conformance.observe.errors import (
    NoSuchProcessError,
    NothingListensError,
    ProcAccessDeniedError,
)
from forkshare.conformance.observe.launch import RunningTarget, free_port, launch
from forkshare.conformance.observe.observer import ServerSnapshot, snapshot, who_accepted
from forkshare.conformance.observe.procfs import TcpState, read_stat, read_tcp_table
from forkshare.conformance.observe.role import Role
from forkshare.conformance.verify.abstraction import (
    Abstract,
    ProcessFacts,
    facts,
    of_state,
    role_of,
)
from forkshare.conformance.verify.machine import SETTLE, Step
from forkshare.conformance.verify.profile import Profile
from forkshare.conformance.verify.target import command_line, trace_path
from forkshare.model.config import Config, Mode
from forkshare.model.observation import Outcome
from forkshare.model.state import System


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
    """One step's evidence, kept for the report."""

    step: Step
    record: Abstract
    allowed: frozenset[Abstract]


@dataclass(slots=True)
class Live:
    """One launched target and what was seen of it."""

    target: RunningTarget
    directory: Path
    masters: set[int] = field(default_factory=set)
    seen: set[int] = field(default_factory=set)


class TargetBackend:
    """A real target behind the machine (see the module docstring)."""

    drives_internal = False

    def __init__(
        self,
        config: Config,
        profile: Profile,
        settling: Settling = Settling(),
        base: Path | None = None,
    ) -> None:
        self.config = config
        self.profile = profile
        self.settling = settling
        self.base = base
        self.port = free_port()
        self.clients: list[Client] = []
        self.live: Live | None = None
        self.history: list[Observed] = []
        self.trace_files: list[Path] = []
        self._step: Step = ("initial", ())
        self.registered = 0
        self._passfd = config.mode is Mode.PASSFD
        self.findings: list[str] = []

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
        if step == SETTLE:
            return True
        return PERFORMERS[name](self, args, states)

    def start(self) -> RunningTarget:
        """Launch the target on the backend's port, in a fresh scratch directory.

        Raises:
            TargetFailedToStartError: the target did not start (exit 3).
        """
        directory = Path(tempfile.mkdtemp(prefix="forkshare-verify-", dir=self.base))
        argv = command_line(self.profile, self.port, self.config.workers, directory)
        target = launch(argv, self.port, output_dir=directory)
        self.live = Live(target, directory, masters={target.group.pid})
        trace = trace_path(self.profile, self.port, self.config.workers, directory)
        if trace is not None:
            self.trace_files.append(trace)
        return target

    def send_signal(self, signum: int, pid: int) -> None:
        """Send ``signum`` to real process ``pid`` (gone already: nothing to do); a master we
        SIGKILL is reaped, since we are its parent."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        live = self.live
        if signum == signal.SIGKILL and live is not None and pid == live.target.group.pid:
            live.target.group.process.wait()

    def real_pid(self, model_pid: int, states: frozenset[System]) -> int | None:
        """The real process playing model process ``model_pid`` (see Discussion), or None when
        the target has no process in that category (the step's signal would reach no one)."""
        for state in sorted(states, key=repr):
            proc = state.process(model_pid)
            if proc is None or not proc.is_alive:
                continue
            category = (role_of(state, model_pid), proc.stopped)
            peers = sorted(
                p.pid
                for p in state.processes
                if p.is_alive and (role_of(state, p.pid), p.stopped) == category
            )
            real = sorted(pid for pid, facts in self.processes().items() if facts[:2] == category)
            index = peers.index(model_pid)
            if index < len(real):
                return real[index]
        return None

    # ------------------------------------------------------------------ observation

    def allowed(self, candidates: frozenset[System]) -> frozenset[System]:
        """The candidates whose record equals the target's, once it has settled."""
        by_record: dict[Abstract, set[System]] = {}
        for state in candidates:
            by_record.setdefault(of_state(state, self._passfd), set()).add(state)
        record = self.observe()
        deadline = time.monotonic() + self.settling.timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            if record in by_record and time.monotonic() - quiet_since >= self.settling.quiet:
                break
            time.sleep(self.settling.interval)
            current = self.observe()
            if current != record:
                record, quiet_since = current, time.monotonic()
        self.history.append(Observed(self._step, record, frozenset(by_record)))
        return frozenset(by_record.get(record, ()))

    def observe(self) -> Abstract:
        """The target's record now."""
        processes = self.processes()
        queues = tuple(
            sorted(
                row.rx_queue
                for row in read_tcp_table(None)
                if row.state == TcpState.LISTEN and row.local.port == self.port
            )
        )
        return Abstract(
            processes=tuple(sorted(processes.values())),
            queues=queues,
            clients=tuple(self._client(c, processes) for c in self.clients),
        )

    def _client(self, client: Client, processes: dict[int, ProcessFacts]) -> tuple[str, str]:
        outcome = client.outcome()
        if outcome != Outcome.PENDING or client.local is None:
            return (outcome, "")
        owner = who_accepted(client.local.port, server_port=self.port)
        if owner is None:
            return (outcome, "")
        return (outcome, str(processes[owner][0] if owner in processes else Role.WORKER))

    def processes(self) -> dict[int, ProcessFacts]:
        """Live processes of the target: pid → (role, stopped, listening sockets held)."""
        live = self.live
        if live is None:
            return {}
        snap = self._snapshot(live)
        found: dict[int, ProcessFacts] = {}
        if snap is not None:
            for view in snap.processes:
                if view.state in ("Z", "X"):
                    continue
                if view.role is Role.MASTER:
                    live.masters.add(view.pid)
                found[view.pid] = facts(
                    view.role, view.state in ("T", "t"), len(view.held_inodes), self._passfd
                )
        for pid in live.seen - set(found):
            stat = read_stat(pid)
            if stat is None or stat.state in ("Z", "X"):
                continue
            orphan_or_worker = Role.ORPHAN if stat.ppid == 1 else Role.WORKER
            role = Role.MASTER if pid in live.masters else orphan_or_worker
            found[pid] = facts(role, stat.state in ("T", "t"), 0, self._passfd)
        live.seen |= set(found)
        return found

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
        for client in self.clients:
            client.close()
        if self.live is not None:
            with contextlib.suppress(ProcessLookupError):
                self.live.target.group.stop(grace=1.0, extra_pids=tuple(self.live.seen))


HOLDER = -1
"""A step argument standing for "the worker whose epoll set holds the listener" (the accept-mutex
holder, DOMAIN.md §8), resolved on the running target by :meth:`TargetBackend.resolve`."""


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
    workers = sorted(
        pid for pid, facts in backend.processes().items() if facts[:2] == (Role.WORKER, False)
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
    snap = backend._snapshot(backend.live) if backend.live is not None else None
    if snap is None:
        return None
    registered = {
        pid
        for lst in snap.listeners
        for pid in snap.registrants(lst.inode)
        if (view := snap.process(pid)) is not None and view.role is Role.WORKER
    }
    return registered.pop() if len(registered) == 1 else None


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


PERFORMERS: dict[str, Performer] = {
    "start_master": _start_master,
    "connect": _connect,
    "send_request": _send_request,
    "close_connection": _close_connection,
    "kill_worker": _signal(lambda _: signal.SIGKILL),
    "stop_worker": _signal(lambda _: signal.SIGSTOP),
    "continue_worker": _signal(lambda _: signal.SIGCONT),
    "reload": _signal(lambda profile: profile.reload_signal),
    "graceful_shutdown": _signal(lambda profile: profile.graceful_signal),
    "fast_shutdown": _signal(lambda profile: profile.fast_signal),
    "upgrade": _signal(lambda profile: profile.upgrade_signal or signal.SIGUSR2),
    "kill_master": _signal(lambda _: signal.SIGKILL),
}
"""How each environment action of :data:`~forkshare.model.actions.ACTIONS` is performed on a real
target, by the action's name (a test ties the keys to the model's environment actions)."""
