"""The probes of discovery: short experiments on a real target, each bounded by a budget.

Each probe works on a :class:`~forkshare.conformance.verify.probe_run.ProbeRun` (the target
started fresh in its own process group) and returns a small frozen finding with its evidence in
words. :mod:`~forkshare.conformance.verify.discovery` runs them; :class:`DiscoveryBudget` bounds
every wait:

=================  ============================================================  ===============
probe              what it does                                                  bounded by
=================  ============================================================  ===============
structure          waits for the workers to exist and sleep; a process that       ``workers``
                   listens alone gets a client after ``first_client`` seconds:    (5 s)
                   if it accepts it and still has no worker ``accept_grace``
                   later, it is not a prefork server; then ``looks`` snapshots:
                   the sharing mode, the holders outside the tree (leaks), F9
defer              a silent client: SYN_RECV (03) and rx_queue 0 = deferred        ``defer`` (0.5 s)
                   (K19); ESTABLISHED at once = not
respawn            SIGKILL one worker; time until a new child makes the count     ``respawn`` (6 s)
                   whole again (F10)
reload             the reload signal; whether new workers appear before an old    ``reload`` (4 s)
                   one exits, and whether the master re-executes itself (F4)
parent death       SIGKILL the master; time until every worker is gone; if one    ``parent_death``
                   outlives the cap, whether a client is then served (F7)         (10 s)
graceful stop      a worker gets a partial request, another is SIGSTOPped, then   ``graceful``
                   the graceful signal: does the master keep its listener (F1),   (1.5 s)
                   does the busy worker keep its copy (F2), does the master exit
                   before the stopped worker (F8)?
=================  ============================================================  ===============

Discussion:
    *Deciding the mode from facts.* :func:`~forkshare.conformance.observe.sharing_mode.infer_mode`
    prefers ``unknown`` to a guess. Discovery must hand the verifier a mode, so when the master
    and every worker share one socket but /proc does not show how idle workers wait (busy, or a
    wait channel it does not know), the socket is taken as shared in ``poll`` mode: the model's
    poll mode lets any idle worker take a connection and claims nothing about how many wake up,
    so it is the weakest claim consistent with the facts. The finding says it was decided so
    (``observed`` is False), and a claimed shared mode is then never called contradicted.

    *Measuring parent death without traffic.* Some workers notice their master's death only when
    their wait returns (gunicorn's sync worker: after an accept, or after ``timeout/2``); a client
    sent at once would shorten what is measured. The probe therefore measures the idle latency
    and sends its client only when a worker outlives the cap, to show whether orphans serve.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from forkshare.conformance.observe.client import Client, probe
from forkshare.conformance.observe.deadline import poll_until
from forkshare.conformance.observe.observer import connection_holders, who_accepted
from forkshare.conformance.observe.procfs import Endpoint, TcpState, read_stat, read_tcp_table
from forkshare.conformance.observe.sharing_mode import ModeInference, SharingMode, infer_mode
from forkshare.conformance.verify.probe_run import (
    GONE_STATES,
    ProbeRun,
    ServerView,
    holds_listener,
    is_alive,
    live_children,
)
from forkshare.conformance.verify.profile import Profile
from forkshare.model.observation import Outcome

NOT_PREFORK = "one process listens and accepts"
POLL = 0.01
"""Seconds between two cheap looks (a process's children, stat or fd links)."""
FAST_POLL = 0.001
"""Until a reload's first change: an idle old worker can exit milliseconds after the new one is
forked, and both must not fall into one look (F4)."""
AT_ONCE = 0.1
"""Seconds within which a change counts as immediate (too fast to tell two steps apart)."""
LOOK = 0.05
"""Seconds between two full snapshots (each scans every fd table in /proc)."""
PARTIAL_REQUEST = b"GET / HTTP/1.1\r\nHost: forkshare\r\n"
"""A request head without its end: the worker that accepts it has a request in hand (F2, F3)."""


@dataclass(frozen=True, slots=True)
class DiscoveryBudget:
    """The bound of every wait of discovery, in seconds (the module table says which probe)."""

    start: float = 10.0
    """Until the target's port listens (each of the three runs)."""
    workers: float = 5.0
    """Until the workers exist and sleep."""
    first_client: float = 1.0
    """Without a worker this long, a client is sent to the process that listens."""
    accept_grace: float = 0.5
    """After it accepted that client, how long a worker may still take to appear."""
    looks: int = 5
    """Snapshots the mode is inferred from (LOOK apart): one look can catch a transition."""
    defer: float = 0.5
    respawn: float = 6.0
    settle: float = 2.0
    """Between two probes of one run: until the workers sleep again."""
    reload: float = 4.0
    parent_death: float = 10.0
    """The parent-death cap when the profile claims workers-exit (the default)."""
    orphans_claimed: float = 2.0
    """The cap when the profile claims orphans-serve: a long wait would show nothing more."""
    partial_accept: float = 1.0
    """Until a worker accepts the graceful-stop probe's partial request."""
    graceful: float = 1.5


def _since(started: float) -> float:
    return time.monotonic() - started


# ------------------------------------------------------------------------------- structure


@dataclass(frozen=True, slots=True)
class Structure:
    """Who the server's processes are and how they share the listener.

    Attributes:
        view: the last look at the server (None when nothing listened).
        mode: the sharing mode, None when not decided (or not a prefork server).
        mode_reason: the evidence for ``mode``, one sentence.
        observed: True when /proc showed the mode; False when it was decided from facts
            (module Discussion).
        not_prefork: :data:`NOT_PREFORK` for a server with one process, else None.
        leaked: one line per listener descriptor held outside the server's tree.
        clones: F9 in words (reuseport with the master's clones only), else None.
        notes: anything else worth a line (workers that did not settle, a daemonising server).
    """

    view: ServerView | None
    mode: SharingMode | None
    mode_reason: str
    observed: bool
    not_prefork: str | None
    leaked: tuple[str, ...]
    clones: str | None
    notes: tuple[str, ...]


def probe_structure(run: ProbeRun, budget: DiscoveryBudget) -> Structure:
    """Wait for the server to settle, then read its structure and sharing mode (module table)."""
    view, not_prefork = settle(run, budget, budget.workers, single_check=True)
    if view is None:
        return Structure(None, None, "nothing listened", False, None, (), None, ())
    looks = [view, *_more_looks(run, budget.looks - 1)]
    notes = list(run.notes)
    if not not_prefork and len(view.workers) < run.workers:
        notes.append(
            f"{len(view.workers)} of {run.workers} workers existed and slept after "
            f"{budget.workers:g} s"
        )
    mode, reason, observed = (None, NOT_PREFORK, True) if not_prefork else _decide_mode(looks)
    return Structure(
        view=view,
        mode=mode,
        mode_reason=reason,
        observed=observed,
        not_prefork=not_prefork,
        leaked=_leak_lines(looks),
        clones=_clones(view) if mode is SharingMode.REUSEPORT else None,
        notes=tuple(notes),
    )


def settle(
    run: ProbeRun, budget: DiscoveryBudget, timeout: float, *, single_check: bool = False
) -> tuple[ServerView | None, str | None]:
    """Wait (bounded by ``timeout``) until the run's workers exist and sleep.

    With ``single_check``, a process listening alone gets a client (see the module table) and a
    server that accepts it with no worker in sight is reported as :data:`NOT_PREFORK`.

    Returns:
        The last look (None if nothing ever listened) and :data:`NOT_PREFORK` or None.
    """
    started = time.monotonic()
    client: Client | None = None
    accepted_at: float | None = None
    last: ServerView | None = None
    try:
        while True:
            view = run.look()
            last = view or last
            if view is not None and _is_settled(view, run.workers):
                return view, None
            if single_check and view is not None and not view.workers:
                if client is None and _since(started) >= budget.first_client:
                    client = Client(run.port)
                    client.send_request()
                if client is not None and accepted_at is None and _was_accepted(client, run.port):
                    accepted_at = time.monotonic()
                if accepted_at is not None and _since(accepted_at) >= budget.accept_grace:
                    return view, NOT_PREFORK
            elif view is not None:
                accepted_at = None  # a worker appeared: the client proves nothing any more
            if _since(started) >= timeout:
                return last, None
            time.sleep(LOOK)
    finally:
        if client is not None:
            client.close()


def _is_settled(view: ServerView, workers: int) -> bool:
    return len(view.workers) >= workers and view.idle_workers() == len(view.workers)


def _was_accepted(client: Client, port: int) -> bool:
    """The client's connection left the accept queue: answered, closed, or held by someone."""
    if client.outcome() in (Outcome.SERVED, Outcome.CLOSED):
        return True
    return client.local is not None and bool(connection_holders(client.local, port))


def _more_looks(run: ProbeRun, count: int) -> list[ServerView]:
    looks: list[ServerView] = []
    for _ in range(count):
        time.sleep(LOOK)
        view = run.look()
        if view is not None:
            looks.append(view)
    return looks


def _decide_mode(looks: list[ServerView]) -> tuple[SharingMode | None, str, bool]:
    inference = _majority([infer_mode(view.server) for view in looks])
    if inference.mode is not SharingMode.UNKNOWN:
        return inference.mode, inference.reason, True
    view = looks[-1]
    holding = [w for w in view.workers if view.inodes and w.held_inodes == view.inodes]
    if len(view.inodes) == 1 and view.workers and len(holding) == len(view.workers):
        [inode] = view.inodes
        return (
            SharingMode.POLL,
            f"{len(holding)} workers share socket:[{inode}], but /proc does not show how they "
            f"wait ({inference.reason}): taken as poll, which claims nothing about wake-ups",
            False,
        )
    return None, inference.reason, False


def _majority(inferences: list[ModeInference]) -> ModeInference:
    """The mode most looks agree on (unknown looks left out), with the count if not all."""
    known = [i for i in inferences if i.mode is not SharingMode.UNKNOWN]
    if not known:
        return inferences[-1]
    mode, count = Counter(i.mode for i in known).most_common(1)[0]
    first = next(i for i in known if i.mode is mode)
    if count == len(inferences):
        return first
    others = ", ".join(sorted({i.mode.value for i in inferences} - {mode.value}))
    return ModeInference(
        mode, f"{first.reason} ({count} of {len(inferences)} looks; else {others})"
    )


def _leak_lines(looks: list[ServerView]) -> tuple[str, ...]:
    lines: dict[tuple[int, int, int], str] = {}
    for view in looks:
        for process in view.leaked:
            for fd in process.listener_fds:
                lines[(process.pid, fd.inode, fd.fd)] = (
                    f"pid {process.pid} ({process.cmdline[:80]}), outside the server's process "
                    f"tree (parent {process.ppid}), holds socket:[{fd.inode}] as fd {fd.fd}"
                )
    return tuple(lines[key] for key in sorted(lines))


def _clones(view: ServerView) -> str:
    """F9: how many of the master's reuseport clones each worker keeps."""
    kept = sorted({len(w.held_inodes & view.inodes) for w in view.workers})
    total = len(view.inodes)
    if kept == [total]:
        return f"every worker keeps every clone ({total}, nginx N1)"
    if kept == [1]:
        return "each worker keeps only its own clone"
    return f"workers keep {', '.join(map(str, kept))} of the {total} clones"


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
        if _since(started) >= window:
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
    latency = _since(started)
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
    reexec: bool = False


def probe_reload(
    run: ProbeRun, profile: Profile, master: int | None, budget: DiscoveryBudget
) -> ReloadFinding:
    """Send the reload signal and watch the generations change (module table)."""
    first = read_stat(master) if master is not None else None
    old = live_children(master) if master is not None else frozenset()
    if master is None or first is None or not old:
        return ReloadFinding(None, "not probed: no master with workers")
    name = profile.reload_signal.name
    if not run.signal(master, profile.reload_signal):
        return ReloadFinding(None, "not probed: the master was gone")
    started, times = time.monotonic(), _ReloadTimes()
    while _since(started) < budget.reload:
        stat = read_stat(master)
        if stat is None or stat.state in GONE_STATES:
            return ReloadFinding(None, f"the master exited on {name}")
        times.reexec |= stat.startstack != first.startstack
        children, now = live_children(master), round(_since(started), 4)
        if children - old and times.first_new is None:
            times.first_new = now
        if old - children and times.first_old_exit is None:
            times.first_old_exit = now
        if not old & children and len(children - old) >= len(old):
            break
        time.sleep(FAST_POLL if times.first_new is None and times.first_old_exit is None else POLL)
    return _reload_finding(name, times, budget.reload)


def _reload_finding(name: str, times: _ReloadTimes, window: float) -> ReloadFinding:
    new, old = times.first_new, times.first_old_exit
    evidence = (
        f"{name}: a new worker appeared {_when(new, window)}, "
        f"an old one was gone {_when(old, window)}"
    )
    if new is None and old is None:
        order = None if not times.reexec else "re-executes the master (K20); no worker changed"
        return ReloadFinding(order, f"{name}: no worker changed within {window:g} s")
    if old is None or (new is not None and new < old):
        order = "forks the new generation first, then retires the old"
    elif new is None or old < new:
        order = "retires the old generation first, then forks the new"
    else:
        order = "not resolved (the generations changed within one look)"
    if times.reexec:
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
        latency = _since(started)
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
    with _partial_client(run.port) as client:
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


@contextlib.contextmanager
def _partial_client(port: int) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=1.0)
    try:
        sock.sendall(PARTIAL_REQUEST)
        yield sock
    finally:
        sock.close()


def _watch_stop(cast: _StopCast, window: float) -> _StopTimes:
    started, times = time.monotonic(), _StopTimes()
    while _since(started) < window:
        now = round(_since(started), 3)
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
    """Something visible happened: a listener closed, a process exited (an idle worker's exit
    is the usual first sign)."""
    changed = (times.master_closed, times.master_exited, times.busy_closed, times.busy_exited)
    return any(t is not None for t in changed) or not all(map(is_alive, cast.idle))


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
