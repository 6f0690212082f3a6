"""The conditions of the timed properties, on observed histories written by hand."""

from __future__ import annotations

from forkshare.conformance.verify.timing import Context, orphans_alive
from forkshare.model.config import Mode, ParentDeath
from forkshare.model.monitors import Moment
from forkshare.model.observation import Observation, ProcessView
from forkshare.model.state import Role

CONTEXT = Context(
    workers=2,
    worker_connections=1,
    mode=Mode.MUTEX,
    parent_death=ParentDeath.WORKERS_EXIT,
    accept_reachable=True,
)


def _after_master_death(second_stopped: bool) -> list[Moment]:
    """Master 1 and workers 2, 3; then the master is SIGKILLed and both workers are orphans."""
    before = Observation(
        processes=(
            ProcessView(1, Role.MASTER, 0, True, False, frozenset({0})),
            ProcessView(2, Role.WORKER, 1, True, False, frozenset({0})),
            ProcessView(3, Role.WORKER, 1, True, False, frozenset({0})),
        ),
        listeners=(),
        clients=(),
    )
    after = Observation(
        processes=(
            ProcessView(2, Role.WORKER, 0, True, False, frozenset({0})),
            ProcessView(3, Role.WORKER, 0, True, second_stopped, frozenset({0})),
        ),
        listeners=(),
        clients=(),
    )
    return [Moment(("start_master", ()), before), Moment(("kill_master", (1,)), after)]


def test_running_orphans_are_overdue() -> None:
    assert orphans_alive(_after_master_death(second_stopped=False), CONTEXT) is not None


def test_no_orphan_is_owed_an_exit_while_a_worker_is_stopped() -> None:
    # A stopped worker may hold what the others wait for (flock_mutex: the stopped holder of the
    # flock() keeps the running orphan from reading its pipe of death).
    assert orphans_alive(_after_master_death(second_stopped=True), CONTEXT) is None
