"""Timed liveness on a real server: each property of :mod:`forkshare.model.liveness`, measured.

The model is untimed, so a state it allows on the way (a worker not yet replaced, a client not
yet accepted) is allowed for any number of steps; a real server must get past it in time. Each
property here is a *condition* over the observed history that says "something is overdue if this
lasts": a running master short of workers, a queued client while a worker idles, an orphan still
alive, a stopped server still running, a listener still held after the master left. The
:class:`Timekeeper` starts a clock when a condition appears and stops it when it goes away; a
clock that runs past its bound is a violation, named by the property, with what was overdue and
for how long.

Discussion:
    *The model decides what is owed.* A queued client is owed an accept only when every state
    the model still considers possible lets some worker accept it by internal steps alone
    (``accept_reachable``): a stopped accept-mutex holder, or a reuseport socket whose only
    worker is stopped, stall the queue legitimately, and the clock does not start. What the
    tester did (a SIGSTOP) is thus never blamed on the server.

    *Stopped processes stop clocks.* A process the tester SIGSTOPped cannot act; a stop or an
    orphan's exit is owed only once nothing of the server is stopped (the verifier continues
    every process before it ends a run).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from forkshare.model.config import Mode, ParentDeath
from forkshare.model.monitors import Moment
from forkshare.model.observation import Observation, Outcome, ProcessView
from forkshare.model.state import Role


@dataclass(frozen=True, slots=True)
class Bounds:
    """The bound of each timed property, in seconds (from the profile)."""

    respawn: float
    service: float
    mutex: float
    orphans: float
    graceful: float
    shutdown: float


@dataclass(frozen=True, slots=True)
class Context:
    """What the conditions need besides the history."""

    workers: int
    """Worker slots the server was started with."""
    worker_connections: int
    mode: Mode
    parent_death: ParentDeath
    accept_reachable: bool
    """Every state the model still allows can accept a queued connection by internal steps."""


Condition = Callable[[Sequence[Moment], Context], "str | None"]


# ---------------------------------------------------------------------------------------------
# Reading the history
# ---------------------------------------------------------------------------------------------


def _asked(history: Sequence[Moment], *names: str) -> set[int]:
    return {m.step[1][0] for m in history if m.step is not None and m.step[0] in names}


def _view(history: Sequence[Moment]) -> Observation:
    return history[-1].view


def _running_masters(history: Sequence[Moment]) -> list[ProcessView]:
    stopping = _asked(history, "graceful_shutdown", "fast_shutdown", "kill_master")
    return [
        p
        for p in _view(history).processes
        if p.role is Role.MASTER and p.alive and p.pid not in stopping
    ]


def _first_parents(history: Sequence[Moment]) -> dict[int, int]:
    found: dict[int, int] = {}
    for moment in history:
        for proc in moment.view.processes:
            found.setdefault(proc.pid, proc.parent)
    return found


def _server_of(history: Sequence[Moment], master: int) -> list[ProcessView]:
    """``master`` and every live process first seen as its child."""
    parents = _first_parents(history)
    return [
        p
        for p in _view(history).processes
        if p.alive and p.role is not Role.HELPER and (p.pid == master or parents[p.pid] == master)
    ]


def _in_hand(view: Observation) -> list[int]:
    """Clients an accepted connection of which a server process still holds."""
    return [c.cid for c in view.clients if c.outcome == Outcome.PENDING and c.owner]


def _anything_stopped(view: Observation) -> bool:
    return any(p.stopped and p.alive for p in view.processes)


def _names(pids: Sequence[int]) -> str:
    return ", ".join(str(p) for p in pids)


# ---------------------------------------------------------------------------------------------
# The conditions, one per timed property
# ---------------------------------------------------------------------------------------------


def short_of_workers(history: Sequence[Moment], ctx: Context) -> str | None:
    """``dead_workers_are_replaced``: a running master has fewer live workers than its slots."""
    view = _view(history)
    for master in _running_masters(history):
        workers = [
            p
            for p in view.processes
            if p.role is Role.WORKER and p.alive and p.parent == master.pid
        ]
        if len(workers) < ctx.workers:
            return f"master {master.pid} ran {len(workers)} of {ctx.workers} workers"
    return None


def queued_while_idle(history: Sequence[Moment], ctx: Context) -> str | None:
    """``queued_connections_are_accepted``: a client waits in an accept queue while a running,
    unstopped worker has room and the model says a worker can take it."""
    view = _view(history)
    if not ctx.accept_reachable or not any(lst.queued for lst in view.listeners if lst.listening):
        return None
    waiting = [c.cid for c in view.clients if c.outcome == Outcome.PENDING and not c.owner]
    if not waiting:
        return None
    masters = {m.pid for m in _running_masters(history)}
    owned = [c.owner for c in view.clients if c.outcome == Outcome.PENDING and c.owner]
    idle = [
        p.pid
        for p in view.processes
        if p.role is Role.WORKER
        and p.alive
        and not p.stopped
        and p.parent in masters
        and owned.count(p.pid) < ctx.worker_connections
    ]
    if not idle:
        return None
    return (
        f"client(s) {_names(waiting)} waited in the accept queue while worker(s) "
        f"{_names(idle)} could take them"
    )


def orphans_alive(history: Sequence[Moment], ctx: Context) -> str | None:
    """``orphans_exit_within_bound``: under workers-exit, a running orphan with nothing in hand
    is still alive (workers of a master told to stop are the stop's business:
    ``graceful_stop_completes``, ``shutdown_releases_port``)."""
    if ctx.parent_death is not ParentDeath.WORKERS_EXIT:
        return None
    view = _view(history)
    if _anything_stopped(view):
        return None  # a stopped worker may hold what the orphans wait for (an flock mutex)
    busy = {c.owner for c in view.clients if c.outcome == Outcome.PENDING and c.owner}
    stopping = _asked(history, "graceful_shutdown", "fast_shutdown")
    parents = _first_parents(history)
    orphans = [
        p.pid
        for p in view.processes
        if p.role is Role.WORKER
        and p.alive
        and not p.stopped
        and p.parent == 0
        and p.pid not in busy
        and parents.get(p.pid) not in stopping
    ]
    if not orphans:
        return None
    return f"worker(s) {_names(orphans)} outlived their master"


def graceful_stop_running(history: Sequence[Moment], ctx: Context) -> str | None:
    """``graceful_stop_completes``: after a graceful stop, with no request in hand and nothing
    stopped, the server's processes are still alive."""
    view = _view(history)
    if _in_hand(view) or _anything_stopped(view):
        return None
    for master in sorted(_asked(history, "graceful_shutdown")):
        alive = [p.pid for p in _server_of(history, master)]
        if alive:
            return f"after the graceful stop of {master}, process(es) {_names(alive)} still run"
    return None


def port_held_after_master(history: Sequence[Moment], ctx: Context) -> str | None:
    """``shutdown_releases_port``: a stopped master has exited, nothing is in hand or stopped,
    and a process still holds the listener or the port still listens."""
    view = _view(history)
    if _in_hand(view) or _anything_stopped(view):
        return None
    stopped_masters = _asked(history, "graceful_shutdown", "fast_shutdown")
    gone = [
        pid for pid in stopped_masters if not any(p.pid == pid and p.alive for p in view.processes)
    ]
    if not gone or any(p.role is Role.MASTER and p.alive for p in view.processes):
        return None
    holders = [p.pid for p in view.processes if p.alive and p.holds]
    listening = [lst.sid for lst in view.listeners if lst.listening]
    if not holders and not listening:
        return None
    return (
        f"master {_names(gone)} exited after its stop, yet process(es) {_names(holders) or '-'} "
        f"hold the listener and {len(listening)} socket(s) listen"
    )


@dataclass(frozen=True, slots=True)
class TimedProperty:
    """A condition, the property it belongs to, and which bound applies."""

    name: str
    condition: Condition
    bound: Callable[[Bounds], float]


TIMED: tuple[TimedProperty, ...] = (
    TimedProperty("dead_workers_are_replaced", short_of_workers, lambda b: b.respawn),
    TimedProperty("queued_connections_are_accepted", queued_while_idle, lambda b: b.service),
    TimedProperty("orphans_exit_within_bound", orphans_alive, lambda b: b.orphans),
    TimedProperty("graceful_stop_completes", graceful_stop_running, lambda b: b.graceful),
    TimedProperty("shutdown_releases_port", port_held_after_master, lambda b: b.shutdown),
)
"""Every timed property the verifier measures (mutex recovery is the service condition after the
mutex holder's death, see :meth:`Timekeeper.name_of`)."""


@dataclass(slots=True)
class Timekeeper:
    """Clocks for the timed properties (see the module docstring)."""

    bounds: Bounds
    since: dict[str, tuple[float, str]] = field(default_factory=dict)
    kills: list[float] = field(default_factory=list)
    """When workers were SIGKILLed (mutex recovery is timed from there)."""

    def observe(
        self, now: float, history: Sequence[Moment], ctx: Context
    ) -> tuple[str, str] | None:
        """Update every clock with the latest moment of ``history``; the first property whose
        clock ran past its bound, with the evidence, or None."""
        last = history[-1].step
        if last is not None and last[0] == "kill_worker":
            self.kills.append(now)
        for prop in TIMED:
            overdue = prop.condition(history, ctx)
            if overdue is None:
                self.since.pop(prop.name, None)
                continue
            started, _ = self.since.setdefault(prop.name, (now, overdue))
            name, bound = self.name_of(prop, started, ctx)
            if now - started > bound:
                return name, f"{overdue} for {now - started:.1f} s (bound {bound:g} s)"
        return None

    def pending(self) -> bool:
        """True while some clock runs."""
        return bool(self.since)

    def name_of(self, prop: TimedProperty, started: float, ctx: Context) -> tuple[str, float]:
        """The property a running clock belongs to and its bound: a queue that stalls right
        after a worker was killed in mutex mode is the mutex's recovery."""
        if (
            prop.name == "queued_connections_are_accepted"
            and ctx.mode is Mode.MUTEX
            and any(started - 0.5 <= kill <= started + self.bounds.mutex for kill in self.kills)
        ):
            return "mutex_recovers_after_holder_death", self.bounds.mutex
        return prop.name, prop.bound(self.bounds)
