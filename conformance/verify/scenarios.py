"""Scenarios: short programs of the model's environment actions aimed at where defects hide.

A random walk of a dozen steps rarely stops a worker, queues three clients behind it and then
kills it; yet that is where a lost queue shows. Each scenario here is such a program, written
with the model's action names and pids (the master is 1, its first two workers 2 and 3;
:data:`HOLDER` is the worker that holds the accept mutex, found on the running target), played
through the same machine as the random walks, so its steps are checked against the model and
its violations are named and shrunk the same way. The verifier plays every scenario that fits
the configuration (its actions are enabled and within the run's bounds) before the random walks.

The scenarios cover what the verifier issue asks a default run to reach: a client served while
either worker is stopped (a worker that holds the listener but never accepts); SIGKILL of a
worker with connections queued behind it; SIGKILL of the accept-mutex holder; reload and graceful stop
with connections queued and a request in hand; every worker killed, then a client; the master
killed, then a client; a fast stop with a request in hand.

Discussion:
    *A request in hand.* A test server answers at once, so a request is in a worker's hands only
    if the worker cannot run: a client connects and begins its request (a worker accepts it and
    reads the first bytes: the connection is in use, not idle), both workers are stopped, the
    client sends the rest, the master gets its signal, and the workers are continued: each must
    now finish and answer what it holds. A connection whose worker has read nothing yet may be
    closed as unused on a graceful stop (F3), so the first bytes matter. The stop lasts a few
    hundred milliseconds, well under any server's read timeout (nginx and Apache 60 s,
    gunicorn 30 s), which counts the stopped time too.
"""

from __future__ import annotations

from dataclasses import dataclass

from forkshare.model.config import Bounds, Config, Mode

Step = tuple[str, tuple[int, ...]]

HOLDER = -1
"""A step argument standing for the worker that holds the accept mutex (found on the target)."""

SETTLE: Step = ("settle", ())
PAUSE: Step = ("pause", ())
"""Let time pass for longer than the service bound, the timed properties measured meanwhile."""
START: Step = ("start_master", ())
CONNECT: Step = ("connect", ())


def _send(cid: int) -> Step:
    return ("send_request", (cid,))


BEGIN = "begin_request"
"""Not a model action: the client sends its request but the final CRLF (a request in progress;
for the model the client has not sent its request yet)."""


def _begin(cid: int) -> Step:
    return (BEGIN, (cid,))


def _on(action: str, pid: int) -> Step:
    return (action, (pid,))


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named program of steps, and the modes it is meant for (None: every mode)."""

    name: str
    steps: tuple[Step, ...]
    modes: frozenset[Mode] | None = None
    workers: int = 2
    """The fewest worker slots it needs."""

    def fits(self, config: Config) -> bool:
        """True when ``config`` runs enough workers, in a mode the scenario is meant for."""
        return config.workers >= self.workers and (self.modes is None or config.mode in self.modes)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "a client while the first worker is stopped",
        (START, _on("stop_worker", 2), CONNECT, _send(0), PAUSE, _on("continue_worker", 2), SETTLE),
    ),
    Scenario(
        "a client while the second worker is stopped",
        (START, _on("stop_worker", 3), CONNECT, _send(0), PAUSE, _on("continue_worker", 3), SETTLE),
    ),
    Scenario(
        "SIGKILL a worker with connections queued behind it",
        (
            START,
            _on("stop_worker", 2),
            CONNECT,
            CONNECT,
            CONNECT,
            PAUSE,  # the queue stands still a while: who else takes it?
            _on("kill_worker", 2),
            SETTLE,
        ),
    ),
    Scenario(
        "SIGKILL the accept-mutex holder, then a client",
        (START, _on("kill_worker", HOLDER), CONNECT, _send(0), SETTLE, SETTLE),
        modes=frozenset({Mode.MUTEX}),
    ),
    Scenario(
        "reload with a request in hand and a connection queued",
        (
            START,
            CONNECT,
            _begin(0),
            _on("stop_worker", 2),
            _on("stop_worker", 3),
            _send(0),
            CONNECT,
            _on("reload", 1),
            _on("continue_worker", 2),
            _on("continue_worker", 3),
            SETTLE,
            SETTLE,
        ),
    ),
    Scenario(
        "graceful stop with a request in hand and a connection queued",
        (
            START,
            CONNECT,
            _begin(0),
            _on("stop_worker", 2),
            _on("stop_worker", 3),
            _send(0),
            CONNECT,
            _on("graceful_shutdown", 1),
            _on("continue_worker", 2),
            _on("continue_worker", 3),
            SETTLE,
            SETTLE,
        ),
    ),
    Scenario(
        "SIGKILL every worker, then a client",
        (START, _on("kill_worker", 2), _on("kill_worker", 3), CONNECT, _send(0), SETTLE, SETTLE),
    ),
    Scenario(
        "SIGKILL the master, then a client",
        (START, _on("kill_master", 1), CONNECT, _send(0), SETTLE, SETTLE),
        workers=1,
    ),
    Scenario(
        "fast stop with a request in hand",
        (
            START,
            CONNECT,
            _begin(0),
            _on("stop_worker", 2),
            _on("stop_worker", 3),
            _send(0),
            _on("fast_shutdown", 1),
            _on("continue_worker", 2),
            _on("continue_worker", 3),
            SETTLE,
            SETTLE,
        ),
    ),
)
"""Every scenario, in the order a run plays them."""

SCENARIO_BOUNDS = Bounds(
    connections=3, kills=2, stops=2, reloads=1, shutdowns=1, master_kills=1, upgrades=0
)
"""Bounds every scenario fits in (the model's guards enforce them while it plays)."""
