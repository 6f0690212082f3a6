"""The timed probes of discovery: short experiments on a real target, each bounded.

Each probe works on a :class:`~forkshare.conformance.verify.probe_run.ProbeRun` (the target
started fresh in its own process group, its workers settled) and returns a small frozen finding
with its evidence in words; :mod:`~forkshare.conformance.verify.discovery` runs them after the
structure probe (:mod:`~forkshare.conformance.verify.structure_probe`). Each wait is bounded by
a field of :class:`~forkshare.conformance.verify.probe_run.DiscoveryBudget`:

=============  ==================================================================  ================
probe          what it does                                                        bounded by
=============  ==================================================================  ================
defer          a silent client: its server-side row SYN_RECV (03) and the          ``defer`` 0.5 s
               listener's rx_queue 0 = deferred (K19); ESTABLISHED at once = not
respawn        SIGKILL one worker; time until a new child makes the count whole    ``respawn`` 6 s
               again (F10)
reload         the old workers SIGSTOPped, the reload signal: a new worker while   ``reload_held``
               they cannot exit = forks first; else SIGCONT and see which comes    1 s, ``reload``
               first; and whether the master re-executes itself (F4)               4 s
parent death   SIGKILL the master; time until every worker is gone; if one         ``parent_death``
               outlives the cap, whether a client is then served (F7)              10 s
graceful stop  a worker gets a partial request, another is SIGSTOPped, then the    ``graceful``
               graceful signal: does the master keep its listener (F1), the busy   1.5 s
               worker its copy (F2), does the master exit before the stopped
               worker (F8)?
=============  ==================================================================  ================

Discussion:
    *Measuring parent death without traffic.* Some workers notice their master's death only when
    their wait returns (gunicorn's sync worker: after an accept, or after ``timeout/2``); a client
    sent at once would shorten what is measured. The probe therefore measures the idle latency
    and sends its client only when a worker outlives the cap, to show whether orphans serve.

    *Holding the old generation during a reload.* An idle old worker exits a millisecond after
    it is told to, often within the same look as the new worker's fork: the order would be a
    race of our polling. With the old workers SIGSTOPped (a stopped process cannot exit, and a
    signal sent to it waits), the order is a fact: a server that forks first shows a new worker
    while every old one lives; one that retires first shows none until they are let go.

    *Three workers for the graceful stop.* The stopped worker cannot move and the busy one may
    keep its request for seconds (F3); only the idle third one's exit shows that the stop began
    at all, so a server that ignores the signal is not mistaken for one that keeps its listener.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass

from forkshare.conformance.observe.client import Client, probe
from forkshare.conformance.observe.deadline import poll_until
from forkshare.conformance.observe.observer import who_accepted
from forkshare.conformance.observe.procfs import Endpoint, TcpState, read_stat, read_tcp_table
from forkshare.conformance.verify.probe_run import (
    GONE_STATES,
    LOOK,
    POLL,
    DiscoveryBudget,
    ProbeRun,
    ServerView,
    holds_listener,
    is_alive,
    live_children,
    partial_client,
    seconds_since,
)
from forkshare.conformance.verify.profile import Profile
from forkshare.model.observation import Outcome

FAST_POLL = 0.001
"""Until a reload's first change: an idle old worker can exit milliseconds after the new one is
forked, and both must not fall into one look (F4)."""
AT_ONCE = 0.1
"""Seconds within which a change counts as immediate (too fast to tell two steps apart)."""


# ------------------------------------------------------------------------------- defer accept


@dataclass(frozen=True, slots=True)
class DeferFinding:
    """Whether a connection without data is kept out of the accept queue (F6, K19)."""

    deferred: bool | None
    evidence: str


def probe_defer(run: ProbeRun, budget: DiscoveryBudget) -> DeferFinding:
    """Connect a silent client and watch its server-side row (module table)."""
    client = Client(run.port)
    try:
        if client.local is None:
            return DeferFinding(None, f"a silent client could not connect ({client.final})")
        return _watch_silent_client(run.port, client.local, budget.defer)
    finally:
        client.close()


def _watch_silent_client(port: int, local: Endpoint, window: float) -> DeferFinding:
    started = time.monotonic()
    handshaking = 0
    while True:
        rows = [r for r in read_tcp_table() if r.local.port == port and r.remote == local]
        if any(r.state in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT) for r in rows):
            where = "accepted" if any(r.inode for r in rows) else "queued: rx_queue 1"
            return DeferFinding(
                False, f"a silent client's server-side row was ESTABLISHED at once ({where})"
            )
        handshaking += any(r.state == TcpState.SYN_RECV for r in rows)
        if seconds_since(started) >= window:
            break
        time.sleep(2 * POLL)
    if not handshaking:
        return DeferFinding(None, "no server-side row was seen for a silent client")
    return DeferFinding(
        True,
        f"a silent client stayed out of the accept queue for {window:g} s: its server-side row "
        "stayed SYN_RECV (03) and the listener's rx_queue 0 (TCP_DEFER_ACCEPT, K19)",
    )


# ------------------------------------------------------------------------------- respawn


@dataclass(frozen=True, slots=True)
class RespawnFinding:
    """How long a SIGKILLed worker took to be replaced (F10); None: not within the budget."""

    latency: float | None
    evidence: str


def probe_respawn(run: ProbeRun, view: ServerView, budget: DiscoveryBudget) -> RespawnFinding:
    """SIGKILL one worker and time its replacement (module table)."""
    master = view.master
    if master is None or not view.workers:
        return RespawnFinding(None, "not probed: no worker")
    before = live_children(master)
    victims = sorted(w.pid for w in view.workers if w.pid in before)
    if not victims or not run.signal(victims[-1], signal.SIGKILL):
        return RespawnFinding(None, "not probed: the workers were gone before the SIGKILL")
    victim, started = victims[-1], time.monotonic()

    def replaced() -> frozenset[int] | None:
        children = live_children(master)
        new = children - before
        whole = victim not in children and len(children) >= len(before)
        return new if whole and new else None

    new = poll_until(replaced, budget.respawn, interval=POLL)
    if new is None:
        left = len(live_children(master))
        dead = "" if is_alive(master) else "; the master died"
        return RespawnFinding(
            None,
            f"worker {victim} SIGKILLed; not replaced within {budget.respawn:g} s "
            f"({left} of {len(before)} children left{dead})",
        )
    latency = seconds_since(started)
    return RespawnFinding(
        latency,
        f"worker {victim} SIGKILLed; worker {min(new)} took its place {latency:.2f} s later",
    )


# ------------------------------------------------------------------------------- reload


@dataclass(frozen=True, slots=True)
class ReloadFinding:
    """The order of a reload (F4) in words; None when the reload showed nothing."""

    order: str | None
    evidence: str


@dataclass(slots=True)
class _ReloadTimes:
    first_new: float | None = None
    first_old_exit: float | None = None
    new_while_held: bool = False
    reexec: bool = False
    master_exited: bool = False


def probe_reload(
    run: ProbeRun, profile: Profile, master: int | None, budget: DiscoveryBudget
) -> ReloadFinding:
    """Hold the old workers (SIGSTOP), send the reload signal, and watch the generations change
    (module table and Discussion)."""
    first = read_stat(master) if master is not None else None
    old = live_children(master) if master is not None else frozenset()
    if master is None or first is None or not old:
        return ReloadFinding(None, "not probed: no master with workers")
    held = [w for w in sorted(old) if run.signal(w, signal.SIGSTOP)]
    started, times = time.monotonic(), _ReloadTimes()
    try:
        if not run.signal(master, profile.reload_signal):
            return ReloadFinding(None, "not probed: the master was gone")
        _watch_generations(
            master, first.startstack, old, times, started, budget.reload_held, held=True
        )
        times.new_while_held = times.first_new is not None
    finally:
        for worker in held:
            run.signal(worker, signal.SIGCONT)
    if not times.master_exited and not times.new_while_held:
        _watch_generations(master, first.startstack, old, times, started, budget.reload, held=False)
    return _reload_finding(profile.reload_signal.name, times, budget)


def _watch_generations(
    master: int,
    startstack: int,
    old: frozenset[int],
    times: _ReloadTimes,
    started: float,
    until: float,
    *,
    held: bool,
) -> None:
    """Record in ``times`` when the first new worker appeared and the first old one left, until
    ``until`` seconds after ``started`` or until both are known (while ``held``: until the first
    new worker)."""
    while seconds_since(started) < until:
        stat = read_stat(master)
        if stat is None or stat.state in GONE_STATES:
            times.master_exited = True
            return
        times.reexec |= stat.startstack != startstack
        children, now = live_children(master), round(seconds_since(started), 4)
        if children - old and times.first_new is None:
            times.first_new = now
        if old - children and times.first_old_exit is None:
            times.first_old_exit = now
        if times.first_new is not None and (held or times.first_old_exit is not None):
            return
        time.sleep(FAST_POLL if times.first_new is None and times.first_old_exit is None else POLL)


def _reload_finding(name: str, times: _ReloadTimes, budget: DiscoveryBudget) -> ReloadFinding:
    new, gone = times.first_new, times.first_old_exit
    held = f"with the old workers SIGSTOPped for {budget.reload_held:g} s"
    order: str | None
    if times.master_exited:
        return ReloadFinding(None, f"the master exited on {name}")
    if times.new_while_held:
        order = "forks the new generation first, then retires the old"
        evidence = (
            f"{name} {held}: a new worker appeared after {new:.2f} s while every old one lived"
        )
    elif new is None and gone is None:
        order = None if not times.reexec else "re-executes the master (K20); no worker changed"
        evidence = f"{name}: no worker changed within {budget.reload:g} s"
    else:
        evidence = (
            f"{name} {held}: no new worker meanwhile; then an old one was gone "
            f"{_when(gone, budget.reload)} and a new one appeared {_when(new, budget.reload)}"
        )
        order = "retires the old generation first, then forks the new"
        if gone is None or (new is not None and new < gone):
            order = "forks the new generation first (slowly), then retires the old"
    if times.reexec and order is not None and not order.startswith("re-executes"):
        order = f"re-executes the master (K20); {order}"
    return ReloadFinding(order, evidence)


def _when(value: float | None, window: float) -> str:
    return f"after {value:.2f} s" if value is not None else f"not within {window:g} s"


# ------------------------------------------------------------------------------- parent death


@dataclass(frozen=True, slots=True)
class ParentDeathFinding:
    """What the workers did after their master's SIGKILL (F7, P13).

    Attributes:
        latency: seconds until every worker was gone; None when one outlived ``cap`` (or when
            not probed: ``probed`` is False then).
        cap: how long the probe waited.
        probed: False when there was no master with workers to kill.
        served_after_cap: when a worker outlived the cap: whether a client was then served
            (only an orphan could serve it); None otherwise.
        evidence: the finding in words.
    """

    latency: float | None
    cap: float
    probed: bool
    served_after_cap: bool | None
    evidence: str

    @property
    def outlived(self) -> bool:
        """True when a worker was still alive at the cap."""
        return self.probed and self.latency is None


def probe_parent_death(run: ProbeRun, view: ServerView, cap: float) -> ParentDeathFinding:
    """SIGKILL the master and time its workers' exit (module table and Discussion)."""
    master, workers = view.master, tuple(w.pid for w in view.workers)
    if master is None or not workers or not run.signal(master, signal.SIGKILL):
        return ParentDeathFinding(None, cap, False, None, "not probed: no master with workers")
    started = time.monotonic()
    gone = poll_until(lambda: not any(is_alive(w) for w in workers), cap, interval=POLL)
    if gone:
        latency = seconds_since(started)
        return ParentDeathFinding(
            latency,
            cap,
            True,
            None,
            f"every worker ({len(workers)}) was gone {latency:.2f} s after the master's SIGKILL",
        )
    alive = [w for w in workers if is_alive(w)]
    outcome = probe(run.port, timeout=1.0).outcome
    return ParentDeathFinding(
        None,
        cap,
        True,
        outcome == Outcome.SERVED,
        f"{len(alive)} worker(s) ({', '.join(map(str, alive))}) still alive {cap:g} s after the "
        f"master's SIGKILL; a client connected then was {outcome}",
    )


# ------------------------------------------------------------------------------- graceful stop


@dataclass(frozen=True, slots=True)
class StopFinding:
    """F1, F2 and F8 in words, as a graceful stop with a stopped worker showed them."""

    f1: str
    f2: str
    f8: str
    evidence: str


@dataclass(slots=True)
class _StopTimes:
    master_closed: float | None = None
    master_exited: float | None = None
    stopped_alive_at_master_exit: bool = False
    busy_closed: float | None = None
    busy_exited: float | None = None
    began: float | None = None


@dataclass(frozen=True, slots=True)
class _StopCast:
    """Who plays which part in the graceful-stop probe."""

    master: int
    busy: int | None
    """The worker holding the partial request, if one accepted it."""
    stopped: int
    idle: tuple[int, ...]
    idle_holding: tuple[int, ...]
    """The idle workers that held a listener before the signal."""
    inodes: frozenset[int]
    master_held: bool
    """The master held a listener before the signal (not so with private reuseport)."""
    busy_held: bool
    """The busy worker held a listener before the signal (not so in passfd)."""


def probe_graceful(
    run: ProbeRun, profile: Profile, view: ServerView, budget: DiscoveryBudget
) -> StopFinding:
    """A graceful stop with a request in hand and a stopped worker (module table)."""
    workers = sorted(w.pid for w in view.workers)
    if view.master is None or len(workers) < 2:
        why = "not observed: needs a master with two workers"
        return StopFinding(why, why, why, why)
    with partial_client(run.port) as client:
        accepted = poll_until(
            lambda: who_accepted(client.getsockname()[1], server_port=run.port),
            budget.partial_accept,
            interval=LOOK,
        )
        busy = accepted if accepted in workers else None
        others = [w for w in workers if w != busy]
        cast = _StopCast(
            master=view.master,
            busy=busy,
            stopped=others[0],
            idle=tuple(others[1:]),
            idle_holding=tuple(w for w in others[1:] if holds_listener(w, view.inodes)),
            inodes=view.inodes,
            master_held=holds_listener(view.master, view.inodes),
            busy_held=busy is not None and holds_listener(busy, view.inodes),
        )
        run.signal(cast.stopped, signal.SIGSTOP)
        try:
            if not run.signal(cast.master, profile.graceful_signal):
                why = "not observed: the master was gone"
                return StopFinding(why, why, why, why)
            times = _watch_stop(cast, budget.graceful)
        finally:
            run.signal(cast.stopped, signal.SIGCONT)
    return _stop_finding(cast, times, profile.graceful_signal.name, budget.graceful)


def _watch_stop(cast: _StopCast, window: float) -> _StopTimes:
    started, times = time.monotonic(), _StopTimes()
    while seconds_since(started) < window:
        now = round(seconds_since(started), 3)
        _look_at_master(cast, times, now)
        _look_at_busy(cast, times, now)
        if times.began is None and _stop_began(cast, times):
            times.began = now
        if times.master_exited is not None and _busy_known(cast, times):
            break
        time.sleep(POLL)
    return times


def _look_at_master(cast: _StopCast, times: _StopTimes, now: float) -> None:
    if times.master_exited is not None:
        return
    if not is_alive(cast.master):
        times.master_exited, times.stopped_alive_at_master_exit = now, is_alive(cast.stopped)
    elif (
        cast.master_held
        and times.master_closed is None
        and not holds_listener(cast.master, cast.inodes)
    ):
        times.master_closed = now


def _look_at_busy(cast: _StopCast, times: _StopTimes, now: float) -> None:
    if cast.busy is None or times.busy_exited is not None:
        return
    if not is_alive(cast.busy):
        times.busy_exited = now
    elif (
        cast.busy_held and times.busy_closed is None and not holds_listener(cast.busy, cast.inodes)
    ):
        times.busy_closed = now


def _stop_began(cast: _StopCast, times: _StopTimes) -> bool:
    """Something visible happened: a listener closed or a process exited (an idle worker that
    exits or closes its copy is the usual first sign)."""
    changed = (times.master_closed, times.master_exited, times.busy_closed, times.busy_exited)
    if any(t is not None for t in changed) or not all(map(is_alive, cast.idle)):
        return True
    return not all(holds_listener(w, cast.inodes) for w in cast.idle_holding)


def _busy_known(cast: _StopCast, times: _StopTimes) -> bool:
    return cast.busy is None or times.busy_closed is not None or times.busy_exited is not None


def _stop_finding(cast: _StopCast, times: _StopTimes, name: str, window: float) -> StopFinding:
    if times.began is None:
        why = f"not observed: no visible effect of {name} within {window:g} s"
        return StopFinding(why, why, why, why)
    return StopFinding(
        f1=_f1(cast, times, window),
        f2=_f2(cast, times, window),
        f8=_f8(times, window),
        evidence=(
            f"{name} with worker {cast.stopped} SIGSTOPped"
            + (f" and worker {cast.busy} holding a partial request" if cast.busy else "")
            + f": the master closed its listener {_when(times.master_closed, window)} and "
            f"exited {_when(times.master_exited, window)}"
        ),
    )


def _f1(cast: _StopCast, times: _StopTimes, window: float) -> str:
    if not cast.master_held:
        return "does not apply: the master holds no listener"
    if times.master_closed is not None and (
        times.master_exited is None or times.master_closed < times.master_exited
    ):
        return (
            f"early: the master closed its listener {times.master_closed:.2f} s after the "
            "signal, while a stopped worker still lived"
        )
    if times.master_exited is not None:
        return "with its exit, before its workers were gone (F8)"
    return f"late: the master kept its listener {window:g} s while a stopped worker lived"


def _f2(cast: _StopCast, times: _StopTimes, window: float) -> str:
    if cast.busy is None:
        return "not observed: no worker accepted a partial request"
    if not cast.busy_held:
        return "does not apply: the worker holds no listener (the master passes connections)"
    if times.busy_closed is not None:
        return "early: a stopping worker with a request in hand closed its listener copy"
    if times.busy_exited is not None and times.busy_exited < AT_ONCE:
        return f"not observed: the worker with a request in hand exited within {AT_ONCE:g} s"
    if times.busy_exited is not None:
        return (
            "late: a stopping worker with a request in hand kept its listener copy until it "
            f"exited {times.busy_exited:.2f} s after the signal"
        )
    return (
        "late (or not noticed yet): a stopping worker with a request in hand kept its "
        f"listener copy {window:g} s"
    )


def _f8(times: _StopTimes, window: float) -> str:
    if times.master_exited is not None and times.stopped_alive_at_master_exit:
        return "exits before a stopped worker (its workers end by themselves)"
    if times.master_exited is not None:
        return "not observed: the stopped worker was gone before the master exited"
    return f"waits for its workers (a stopped one kept it {window:g} s)"
