"""The freedoms correct servers take (F1–F10, K19, K20), each with a witness trace in the model.

A specification that hard-codes one server's way judges every other correct server wrong. Each
entry names a choice some correct, widely used server makes, says how the model allows it
(nondeterminism in an action, or a configuration field where a property depends on it), and
carries a *witness*: a concrete trace from the initial state in which the freedom is taken. The
tests replay every witness through the action table (each guard must hold, every invariant must
hold in every state) and check that the explorer reaches its last state, so no freedom is only
claimed; the docs render this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from forkshare.model.actions import ACTIONS
from forkshare.model.config import Bounds, Config, Mode
from forkshare.model.explorer import initial_state
from forkshare.model.state import Fate, Phase, Role, System

Step = tuple[str, tuple[int, ...]]
"""An action's name and its arguments (pids, sids, cids of the witness's own run)."""


@dataclass(frozen=True, slots=True)
class Witness:
    """A trace in which a freedom is taken: ``steps`` from the initial state under ``config``,
    ending in a state where ``shows`` holds."""

    config: Config
    steps: tuple[Step, ...]
    shows: Callable[[System], bool]
    observed: str
    """What the last state shows, in words (the behaviour a real server was seen doing)."""


@dataclass(frozen=True, slots=True)
class Freedom:
    """One freedom: two ways correct servers differ, and how the model allows both."""

    fid: str
    title: str
    one_way: str
    other_way: str
    modelled_by: str
    witness: Witness


def play(witness: Witness) -> tuple[System, ...]:
    """The states of ``witness``'s run, the initial one first.

    Where an action has several successors (nondeterminism), the first one from which the rest
    of the steps can be played, ending where ``witness.shows`` holds, is taken. Raises
    ValueError when no such run exists (a guard does not hold, or the behaviour is not reached).
    """
    found = _play(witness, initial_state(), witness.steps)
    if found is None:
        raise ValueError(f"the witness cannot be played: {witness.observed}")
    return (initial_state(), *found)


def _play(witness: Witness, state: System, steps: tuple[Step, ...]) -> tuple[System, ...] | None:
    if not steps:
        return () if witness.shows(state) else None
    (name, args), rest = steps[0], steps[1:]
    action = ACTIONS[name]
    if not action.guard(witness.config, state, *args):
        return None
    for succ in action.successors(witness.config, state, args):
        tail = _play(witness, succ, rest)
        if tail is not None:
            return (succ, *tail)
    return None


# ---------------------------------------------------------------------------------------------
# What each witness's last state shows
# ---------------------------------------------------------------------------------------------


def _master_holds_after_workers_left(state: System) -> bool:
    master = state.process(1)
    return (
        master is not None
        and bool(master.fds)
        and master.is_alive
        and not any(p.is_worker for p in state.processes)
    )


def _exiting_worker_holds_listener(state: System) -> bool:
    worker = state.process(2)
    return worker is not None and worker.phase is Phase.EXITING and bool(worker.fds)


def _old_worker_closed_and_waits(state: System) -> bool:
    worker = state.process(2)
    conn = state.connection(0)
    return (
        worker is not None
        and worker.phase is Phase.EXITING
        and not worker.fds
        and conn.fate is Fate.ACCEPTED
        and conn.owner == 2
        and not conn.requested
    )


def _new_generation_after_old_left(state: System) -> bool:
    workers = [p for p in state.processes if p.is_worker]
    return (
        len(workers) == 1
        and workers[0].generation == 2
        and workers[0].fds == frozenset({0})
        and state.listener(0).listening
    )


def _worker_received_listener(state: System) -> bool:
    worker = state.process(2)
    return worker is not None and worker.fds == frozenset({0})


def _silent_client_not_queued(state: System) -> bool:
    return state.connection(0).fate is Fate.DEFERRED and not state.listener(0).queue


def _first_byte_admits(state: System) -> bool:
    conn = state.connection(0)
    return conn.fate is Fate.ACCEPTED and conn.requested and conn.owner == 2


def _orphan_accepted_before_noticing(state: System) -> bool:
    worker = state.process(2)
    return worker is not None and worker.orphan_accepts == 1 and state.process(1) is None


def _stopped_worker_outlives_master(state: System) -> bool:
    worker = state.process(2)
    return (
        state.process(1) is None
        and worker is not None
        and worker.stopped
        and worker.quit_requested
        and state.is_orphan(worker)
    )


def _worker_keeps_own_clone(state: System) -> bool:
    worker = state.process(2)
    return worker is not None and worker.fds == frozenset({0}) and len(state.listeners) == 2


def _late_respawn_serves_queue(state: System) -> bool:
    conn = state.connection(0)
    worker = state.process(conn.owner)
    return conn.fate is Fate.ACCEPTED and worker is not None and worker.role is Role.WORKER


def _witness_config(mode: Mode, **changes: object) -> Config:
    bounds = Bounds(
        connections=1, kills=1, stops=1, reloads=1, shutdowns=1, master_kills=1, upgrades=0
    )
    return Config(mode=mode, workers=1, bounds=bounds, **changes)  # type: ignore[arg-type]


_START: tuple[Step, ...] = (("start_master", ()), ("spawn_worker", (1, 0)))

FREEDOMS: dict[str, Freedom] = {
    f.fid: f
    for f in (
        Freedom(
            "F1",
            "When the master closes its own copy of the listener on a stop",
            "at once (nginx on QUIT)",
            "after its last worker has exited (nginx on TERM, many hand-written masters)",
            "``close_listeners`` of a stopping master, anywhere before ``exit_master``",
            Witness(
                _witness_config(Mode.EXCLUSIVE),
                (
                    *_START,
                    ("graceful_shutdown", (1,)),
                    ("begin_graceful_exit", (2,)),
                    ("exit_worker", (2,)),
                    ("reap", (2,)),
                ),
                _master_holds_after_workers_left,
                "master[1] alone, its worker gone: the master still holds the listener",
            ),
        ),
        Freedom(
            "F2",
            "When a worker told to stop accepting closes its copy",
            "at once (nginx worker on QUIT, Apache stop_listening)",
            "when it exits",
            "``close_listeners`` of an exiting worker, anywhere before ``exit_worker``",
            Witness(
                _witness_config(Mode.EXCLUSIVE),
                (*_START, ("graceful_shutdown", (1,)), ("begin_graceful_exit", (2,))),
                _exiting_worker_holds_listener,
                "an exiting worker still holds the listener",
            ),
        ),
        Freedom(
            "F3",
            "An accepted connection whose request has not arrived when the worker quits",
            "closed at once (the reference server)",
            "waited for, up to a read timeout (nginx client_header_timeout, a blocking recv)",
            "``close_idle_connection``, enabled whenever the owner can run",
            Witness(
                _witness_config(Mode.EXCLUSIVE, workers_receive_listeners=False),
                (
                    *_START,
                    ("connect", ()),
                    ("accept", (2, 0)),
                    ("reload", (1,)),
                    ("spawn_worker", (1, 0)),
                    ("retire_generation", (1,)),
                    ("begin_graceful_exit", (2,)),
                    ("close_listeners", (2,)),
                ),
                _old_worker_closed_and_waits,
                "master[1] worker[0] worker[1] | clients pending/worker: the old worker "
                "closed its listener and waits for the request",
            ),
        ),
        Freedom(
            "F4",
            "Order of a reload",
            "fork the new generation first, then retire the old (nginx, gunicorn)",
            "retire the old first, then fork (Apache graceful restart)",
            "``retire_generation`` and ``spawn_worker`` in either order after ``reload``",
            Witness(
                _witness_config(Mode.BLOCKING),
                (
                    *_START,
                    ("reload", (1,)),
                    ("retire_generation", (1,)),
                    ("begin_graceful_exit", (2,)),
                    ("exit_worker", (2,)),
                    ("reap", (2,)),
                    ("spawn_worker", (1, 0)),
                ),
                _new_generation_after_old_left,
                "the old worker left before the new one was forked; the listener stayed",
            ),
        ),
        Freedom(
            "F5",
            "How a worker gets the listener",
            "inherited through fork (K1)",
            "sent over a Unix socket with SCM_RIGHTS after fork (Node cluster SCHED_NONE, K16)",
            "``spawn_worker`` may fork a worker without the listener; ``receive_listeners``",
            Witness(
                _witness_config(Mode.POLL),
                (*_START, ("receive_listeners", (2,))),
                _worker_received_listener,
                "a worker forked without the listener holds it once it is sent",
            ),
        ),
        Freedom(
            "F6",
            "Connections without data",
            "queued at once",
            "kept out of the queue until data arrives (TCP_DEFER_ACCEPT, Apache's default)",
            "``connect`` may hold a connection back (``Config.defer_accept``: either by default)",
            Witness(
                _witness_config(Mode.BLOCKING),
                (*_START, ("connect", ())),
                _silent_client_not_queued,
                "master[1] worker[1] | queues 0 | clients pending: the silent client is "
                "connected but not queued",
            ),
        ),
        Freedom(
            "F7",
            "How workers notice their master's death",
            "PR_SET_PDEATHSIG or an IPC channel closing (at once)",
            "polling getppid() (gunicorn: up to timeout/2)",
            "``Config.parent_death_bound``: above 0 an orphan may accept until it notices",
            Witness(
                _witness_config(Mode.BLOCKING, parent_death_bound=15.0),
                (*_START, ("kill_master", (1,)), ("connect", ()), ("accept", (2, 0))),
                _orphan_accepted_before_noticing,
                "an orphan accepted a connection before it noticed its master's death",
            ),
        ),
        Freedom(
            "F8",
            "Whether the master waits for its workers on a graceful stop",
            "waits (nginx)",
            "exits once it has told them (Node cluster primary after disconnect)",
            "``exit_master`` is enabled once every live worker has been told to stop",
            Witness(
                _witness_config(Mode.POLL),
                (
                    *_START,
                    ("receive_listeners", (2,)),
                    ("stop_worker", (2,)),
                    ("graceful_shutdown", (1,)),
                    ("exit_master", (1,)),
                ),
                _stopped_worker_outlives_master,
                "the primary exited; its stopped worker remains and leaves once it runs again",
            ),
        ),
        Freedom(
            "F9",
            "Reuseport clones a worker keeps",
            "all (nginx, N1)",
            "only its own (the reference server)",
            "``Config.workers_keep_all_clones`` (both explored and proved; no property depends "
            "on it; the verifier takes it from discovery, ``--reuseport-clones``, since it "
            "decides how many sockets still listen once a worker is gone)",
            Witness(
                Config(mode=Mode.REUSEPORT, workers=2, workers_keep_all_clones=False),
                _START,
                _worker_keeps_own_clone,
                "a worker holds only its own clone",
            ),
        ),
        Freedom(
            "F10",
            "How fast a dead worker is replaced",
            "at once, on SIGCHLD (nginx, gunicorn)",
            "by a periodic maintenance pass (Apache prefork: 1.4–1.8 s)",
            "``spawn_worker`` is internal and untimed; the verifier's respawn bound is 3 s",
            Witness(
                _witness_config(Mode.BLOCKING, defer_accept=False),
                (
                    *_START,
                    ("kill_worker", (2,)),
                    ("connect", ()),
                    ("reap", (2,)),
                    ("spawn_worker", (1, 0)),
                    ("accept", (2, 0)),
                ),
                _late_respawn_serves_queue,
                "a connection queued while no worker lived is accepted by the replacement",
            ),
        ),
        Freedom(
            "K19",
            "TCP_DEFER_ACCEPT admits a connection with its first byte",
            "a silent connection is never accepted",
            "its first byte (or the defer timeout) puts it in the queue",
            "``send_request`` admits a held-back connection; ``admit_deferred`` on timeout",
            Witness(
                _witness_config(Mode.BLOCKING),
                (*_START, ("connect", ()), ("send_request", (0,)), ("accept", (2, 0))),
                _first_byte_admits,
                "the held-back connection is accepted once its request arrives",
            ),
        ),
        Freedom(
            "K20",
            "A reload by re-exec of the master",
            "a reload keeps the master process image",
            "the master re-execs itself and keeps its listeners (no FD_CLOEXEC)",
            "``reload`` keeps the listeners; the old generation retires before or after the "
            "new one is forked",
            Witness(
                _witness_config(Mode.EXCLUSIVE, workers_receive_listeners=False),
                (
                    *_START,
                    ("reload", (1,)),
                    ("retire_generation", (1,)),
                    ("begin_graceful_exit", (2,)),
                    ("close_listeners", (2,)),
                    ("exit_worker", (2,)),
                    ("reap", (2,)),
                    ("spawn_worker", (1, 0)),
                ),
                _new_generation_after_old_left,
                "the same listener serves the new generation after the re-exec",
            ),
        ),
    )
}
"""Every freedom, by its fact id: the tests replay each witness; the docs render the table."""
