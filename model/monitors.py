"""What an observer outside the server can check of each invariant: monitors over observations.

An invariant is a predicate over the model's hidden state; a real server shows only an
:class:`~forkshare.model.observation.Observation` (processes and the sockets they hold, queue
lengths, what each client saw) and the tester knows the steps it performed. A *monitor* judges the
last step of such a history: it returns one line of evidence when that step breaks its invariant,
``None`` otherwise. Monitors are keyed by the invariant names of
:data:`~forkshare.model.invariants.INVARIANTS`; an invariant nobody can see from outside has an
entry without a check that says why (and, where one exists, the timed property of
:mod:`forkshare.model.liveness` that stands in for it).

The tests hold every monitor to its invariant on explored transitions: a monitor flags a step
exactly when the invariant held before it and fails after it. The verifier runs the same
functions over what it observed of a real server, so a violation is named by the property it
breaks and shown with its evidence.

Discussion:
    *History, not just two snapshots.* Some judgements need what happened earlier: whether the
    master was told to stop (a queue discarded by a shutdown is no loss), whether it was
    SIGKILLed (which excuses a reset in hand), whether a listener ever belonged to a master (a
    worker's private socket closing is a queue loss, not a change of identity). The tester knows
    every step it performed, so these come from the history; the model's hidden fields
    (generations, slots, the lock word, a pending QUIT) are never used.

    *Coarse steps.* A verifier observes after the system settles, so one of its steps may cover
    several model transitions (a connection accepted and handed off, a listener closed and the
    master reaped). Every monitor is written so that it still judges right over such a step:
    it compares what changed, and takes its excuses from the history, not from one transition's
    shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from forkshare.model.config import Config, Mode
from forkshare.model.invariants import INVARIANTS
from forkshare.model.observation import ClientView, Observation, Outcome, ProcessView
from forkshare.model.state import Role

Step = tuple[str, tuple[int, ...]]
"""An environment action's name and its arguments, in the observation's own ids."""


@dataclass(frozen=True, slots=True)
class Moment:
    """One entry of an observed history: the environment step just performed (``None`` when the
    system only moved on by itself) and what was observed after it."""

    step: Step | None
    view: Observation


History = Sequence[Moment]
Check = Callable[[Config, History], "str | None"]


@dataclass(frozen=True, slots=True)
class Monitor:
    """The outside view of one invariant: a check over histories, or why there is none."""

    name: str
    check: Check | None
    hidden: str = ""
    """When ``check`` is None: why nobody outside can see it, and what stands in for it."""


# ---------------------------------------------------------------------------------------------
# What a history tells
# ---------------------------------------------------------------------------------------------


def _steps(history: History, *names: str) -> set[int]:
    """Pids (first arguments) of every step named ``names`` in ``history``."""
    return {m.step[1][0] for m in history if m.step is not None and m.step[0] in names}


def _shutdown_asked(history: History) -> bool:
    return bool(_steps(history, "graceful_shutdown", "fast_shutdown"))


def _process(view: Observation, pid: int) -> ProcessView | None:
    for proc in view.processes:
        if proc.pid == pid:
            return proc
    return None


def _first_parent(history: History, pid: int) -> int:
    """The parent ``pid`` had when it was first seen: its master, even after it was orphaned."""
    for moment in history:
        proc = _process(moment.view, pid)
        if proc is not None:
            return proc.parent
    return 0


def _was_told_to_stop(history: History, pid: int) -> bool:
    """True when ``pid`` was alive when its master got a graceful stop or a reload."""
    master = _first_parent(history, pid)
    for earlier, moment in pairwise(history):
        step = moment.step
        if step is None or step[0] not in ("graceful_shutdown", "reload") or step[1][0] != master:
            continue
        proc = _process(earlier.view, pid)
        if proc is not None and proc.alive:
            return True
    return False


def _is_running_master(view: Observation, history: History, pid: int) -> bool:
    proc = _process(view, pid)
    stopping = _steps(history, "graceful_shutdown", "fast_shutdown")
    return proc is not None and proc.role is Role.MASTER and proc.alive and pid not in stopping


def _serves_running_master(
    before: Observation, after: Observation, history: History, pid: int
) -> bool:
    """True when ``pid`` is (or belongs to) a master that still runs with no stop asked for."""
    proc = _process(before, pid)
    if proc is None:
        return False
    master = pid if proc.role is Role.MASTER else proc.parent
    return master != 0 and _is_running_master(after, history, master)


def _closed_listeners(before: Observation, after: Observation) -> list[int]:
    still = {lst.sid for lst in after.listeners if lst.listening}
    return [lst.sid for lst in before.listeners if lst.listening and lst.sid not in still]


def _closers(before: Observation, after: Observation, sids: list[int]) -> list[ProcessView]:
    """Processes that held one of ``sids`` before and hold it no more (or died)."""
    found = []
    for proc in before.processes:
        now = _process(after, proc.pid)
        kept = frozenset() if now is None or not now.alive else now.holds
        if any(sid in proc.holds and sid not in kept for sid in sids):
            found.append(proc)
    return found


def _client(view: Observation, cid: int) -> ClientView | None:
    return view.clients[cid] if cid < len(view.clients) else None


def _newly_accepted(before: Observation, after: Observation) -> list[tuple[ClientView, int]]:
    """(client, owner) for each client that was waiting unowned and is now owned."""
    found = []
    for client in after.clients:
        old = _client(before, client.cid)
        waiting = old is None or (old.outcome == Outcome.PENDING and old.owner == 0)
        if client.owner and waiting:
            found.append((client, client.owner))
    return found


def _role(view: Observation, pid: int) -> Role | None:
    proc = _process(view, pid)
    return None if proc is None else proc.role


def _pair(history: History) -> tuple[Observation, Observation]:
    return history[-2].view, history[-1].view


# ---------------------------------------------------------------------------------------------
# The checks, one per observable invariant
# ---------------------------------------------------------------------------------------------


def lost_queued_connections(config: Config, history: History) -> str | None:
    """``no_queued_connection_lost``: a waiting client is reset when a listener closes under a
    master that still runs (a worker's death, a reload, a crash), not under a shutdown."""
    before, after = _pair(history)
    closed = _closed_listeners(before, after)
    if not closed:
        return None
    lost = [
        c.cid
        for c in after.clients
        if (old := _client(before, c.cid)) is not None
        and old.outcome == Outcome.PENDING
        and old.owner == 0
        and (c.outcome in _ENDED or (c.outcome == Outcome.PENDING and old.listener in closed))
    ]
    running = [
        p.pid
        for p in _closers(before, after, closed)
        if _serves_running_master(before, after, history, p.pid)
    ]
    if not lost or not running:
        return None
    return (
        f"client(s) {_names(lost, 'conn')} waited in the accept queue and were reset when "
        f"listener(s) {_names(closed, 'sock')} closed in process(es) {_names(running)}, whose "
        "master still runs with no stop asked for"
    )


def port_stops_listening(config: Config, history: History) -> str | None:
    """``port_keeps_listening``: a master runs with no stop asked for, and nothing listens."""
    before, after = _pair(history)
    if _port_listens_while_running(before, history[:-1]) and not _port_listens_while_running(
        after, history
    ):
        masters = [p.pid for p in after.processes if _is_running_master(after, history, p.pid)]
        return f"master {_names(masters)} runs with no stop asked for, and nothing listens"
    return None


def _port_listens_while_running(view: Observation, history: History) -> bool:
    running = any(_is_running_master(view, history, p.pid) for p in view.processes)
    return not running or any(lst.listening for lst in view.listeners)


def listener_identity_lost(config: Config, history: History) -> str | None:
    """``listeners_keep_identity``: a listener a master held closes while that master (or the
    master of the process closing it) still runs with no stop asked for."""
    before, after = _pair(history)
    masters_held = {
        sid
        for moment in history[:-1]
        for proc in moment.view.processes
        if proc.role is Role.MASTER
        for sid in proc.holds
    }
    closed = [sid for sid in _closed_listeners(before, after) if sid in masters_held]
    if not closed:
        return None
    running = [
        p.pid
        for p in _closers(before, after, closed)
        if _serves_running_master(before, after, history, p.pid)
    ]
    if not running:
        return None
    return (
        f"listener(s) {_names(closed, 'sock')}, opened by the master, closed in process(es) "
        f"{_names(running)} while the master runs with no stop asked for"
    )


def listener_after_shutdown(config: Config, history: History) -> str | None:
    """``no_listener_after_shutdown``: every process is gone after a stop, and a socket listens."""
    if not _shutdown_asked(history):
        return None
    before, after = _pair(history)
    if _listens_after_all_gone(before) or not _listens_after_all_gone(after):
        return None
    sids = [lst.sid for lst in after.listeners if lst.listening]
    return f"every server process is gone after the stop, yet {_names(sids, 'sock')} listens"


def _listens_after_all_gone(view: Observation) -> bool:
    return not view.processes and any(lst.listening for lst in view.listeners)


def orphan_accepts(config: Config, history: History) -> str | None:
    """``orphans_exit_with_master``: a worker whose master is gone accepts a connection, and it
    had not been told to stop before (a told worker may go on accepting until it acts on the stop, F8)."""
    before, after = _pair(history)
    for client, owner in _newly_accepted(before, after):
        proc = _process(after, owner)
        told = _was_told_to_stop(history, owner)
        if proc is not None and proc.role is Role.WORKER and proc.parent == 0 and not told:
            master = _first_parent(history, owner)
            return (
                f"worker {owner} accepted conn{client.cid} after its master {master} died "
                "(it was reparented to init and kept accepting)"
            )
    return None


def master_accepts(config: Config, history: History) -> str | None:
    """``master_never_accepts``: a master accepts a connection in a mode where workers do —
    seen holding it, or the only process that could have taken a waiting client that ended
    without a response while no worker could take it (each stopped or busy) and its listener
    stayed open."""
    if config.mode is Mode.PASSFD:
        return None
    before, after = _pair(history)
    for client, owner in _newly_accepted(before, after):
        if _role(after, owner) is Role.MASTER:
            return f"master {owner} accepted conn{client.cid} itself ({config.mode.value} mode)"
    return _taken_while_no_worker_could(config, before, after)


def _taken_while_no_worker_could(
    config: Config, before: Observation, after: Observation
) -> str | None:
    if _closed_listeners(before, after) or _some_worker_could_take(config, before, after):
        return None
    masters = [p.pid for p in before.processes if p.role is Role.MASTER and p.alive and p.holds]
    listening = {lst.sid for lst in before.listeners if lst.listening}
    for client in after.clients:
        old = _client(before, client.cid)
        if old is None or old.outcome != Outcome.PENDING or old.owner:
            continue
        if old.listener != -1 and old.listener not in listening:
            continue  # dropped with its listener earlier; it finds out only now (K19)
        if client.outcome in _ENDED and masters:
            return (
                f"conn{client.cid} waited in the accept queue while no worker could take it "
                f"(each stopped or busy), then ended without a response, its listener still "
                f"open: master {_names(masters)}, the other process holding it, took it"
            )
    return None


def _some_worker_could_take(config: Config, *views: Observation) -> bool:
    """A running worker with room for one more connection, in any of ``views``."""
    for view in views:
        owned = [c.owner for c in view.clients if c.outcome == Outcome.PENDING and c.owner]
        for proc in view.processes:
            running = proc.role is Role.WORKER and proc.alive and not proc.stopped
            if running and owned.count(proc.pid) < config.worker_connections:
                return True
    return False


def accepted_twice(config: Config, history: History) -> str | None:
    """``accepted_at_most_once``: a connection moves from one worker to another."""
    before, after = _pair(history)
    for client in after.clients:
        old = _client(before, client.cid)
        if old is None or not old.owner or not client.owner or old.owner == client.owner:
            continue
        if _role(before, old.owner) is not Role.MASTER:
            return f"conn{client.cid} was held by {old.owner}, then by {client.owner}"
    return None


def too_many_masters(config: Config, history: History) -> str | None:
    """``single_pending_upgrade``: more than two masters, or two unrelated ones, are alive."""
    before, after = _pair(history)
    if _masters_ok(before) and not _masters_ok(after):
        masters = [p.pid for p in after.processes if p.role is Role.MASTER and p.alive]
        return f"masters {_names(masters)} are alive at once"
    return None


def _masters_ok(view: Observation) -> bool:
    masters = [p for p in view.processes if p.role is Role.MASTER and p.alive]
    if len(masters) <= 1:
        return True
    if len(masters) > 2:
        return False
    first, second = masters
    return first.parent == second.pid or second.parent == first.pid


def herd(config: Config, history: History) -> str | None:
    """``wakes_at_most_one``: one arriving connection woke several waiting processes."""
    if config.mode is Mode.POLL:
        return None
    before, after = _pair(history)
    for client, _ in _newly_accepted(before, after):
        if client.wakeups > 1:
            return f"conn{client.cid}'s arrival woke {client.wakeups} processes"
    return None


def request_in_hand_dropped(config: Config, history: History) -> str | None:
    """``requests_in_hand_are_answered``: a worker resets a request it had in hand, and neither
    SIGKILL of that worker, a fast stop of its master, its master's SIGKILL, nor its being
    stopped (a graceful stop's timeout kills a worker that cannot finish) excuses it."""
    before, after = _pair(history)
    killed = _steps(history[-1:], "kill_worker")
    excused_masters = _steps(history, "fast_shutdown", "kill_master")
    for client in after.clients:
        old = _client(before, client.cid)
        if old is None or client.outcome not in _ENDED or not client.requested:
            continue
        if old.outcome != Outcome.PENDING or not old.owner:
            continue
        worker = old.owner
        proc = _process(before, worker)
        if proc is None or proc.role is not Role.WORKER or worker in killed or proc.stopped:
            continue  # a stopped worker's death is never its own choice
        if _first_parent(history, worker) in excused_masters:
            continue
        return (
            f"worker {worker} reset conn{client.cid} with its request in hand; no SIGKILL, fast "
            "stop or death of its master excuses it"
        )
    return None


def helper_holds_listener(config: Config, history: History) -> str | None:
    """``no_leaked_listener``: a process that is neither master nor worker holds a listener."""
    before, after = _pair(history)
    leaky = {p.pid for p in before.processes if p.role is Role.HELPER and p.holds}
    for proc in after.processes:
        if proc.role is Role.HELPER and proc.holds and proc.pid not in leaky:
            return (
                f"process {proc.pid}, not a worker, holds listener(s) "
                f"{_names(sorted(proc.holds), 'sock')} (a leaked descriptor)"
            )
    return None


_ENDED = (Outcome.RESET, Outcome.CLOSED)
"""Ways a connection ends without a response (a FIN when the server read everything sent)."""


def _names(ids: Sequence[int], prefix: str = "") -> str:
    return ", ".join(f"{prefix}{i}" for i in ids)


_LOCK_WORD = (
    "the lock word lives in the server's shared memory; its timed face, "
    "mutex_recovers_after_holder_death, is measured instead"
)
_KERNEL = "the kernel guarantees it (K1); /proc cannot show it broken"

_ENTRIES: dict[str, Monitor] = {
    m.name: m
    for m in (
        Monitor("type_ok", None, "a well-formedness check of the model's own records"),
        Monitor("at_most_one_mutex_holder", None, _LOCK_WORD),
        Monitor("mutex_holder_is_alive", None, _LOCK_WORD),
        Monitor("accepted_at_most_once", accepted_twice),
        Monitor(
            "queue_within_backlog",
            None,
            "the kernel enforces it, and /proc shows no listener's backlog (K11)",
        ),
        Monitor("held_listener_is_listening", None, _KERNEL),
        Monitor("listening_listener_is_held", None, _KERNEL),
        Monitor("no_queued_connection_lost", lost_queued_connections),
        Monitor("port_keeps_listening", port_stops_listening),
        Monitor("listeners_keep_identity", listener_identity_lost),
        Monitor("no_listener_after_shutdown", listener_after_shutdown),
        Monitor("orphans_exit_with_master", orphan_accepts),
        Monitor("requests_in_hand_are_answered", request_in_hand_dropped),
        Monitor("no_leaked_listener", helper_holds_listener),
        Monitor("master_never_accepts", master_accepts),
        Monitor(
            "reuseport_queue_has_consumer",
            None,
            "worker slots and a disabled respawn are not visible; dead_workers_are_replaced "
            "and queued_connections_are_accepted are measured instead",
        ),
        Monitor("single_pending_upgrade", too_many_masters),
        Monitor("wakes_at_most_one", herd),
    )
}

MONITORS: dict[str, Monitor] = {name: _ENTRIES[name] for name in INVARIANTS if name in _ENTRIES}
"""One entry per invariant, in the invariant table's order (which is also the order in which a
step's broken properties are named: a cause before its consequences)."""


def first_broken(config: Config, history: History) -> tuple[str, str] | None:
    """The first invariant (in table order) that applies to ``config`` and whose monitor flags
    the last step of ``history``, with its evidence; None when no monitor flags it."""
    if len(history) < 2:
        return None
    for name, monitor in MONITORS.items():
        if monitor.check is None or not INVARIANTS[name].applies(config):
            continue
        evidence = monitor.check(config, history)
        if evidence is not None:
            return name, evidence
    return None
