"""The kernel facts the model is built from (facts §5), each checked on concrete states."""

from __future__ import annotations

from forkshare.model.actions import ACTIONS
from forkshare.model.config import Bounds, Config, Mode
from forkshare.model.explorer import initial_state
from forkshare.model.kernel import bind_conflicts, close_descriptor, exit_process
from forkshare.model.state import Fate, System


def run(config: Config, *steps: tuple[str, tuple[int, ...]]) -> System:
    """Apply ``steps`` from the initial state, taking the first successor of each."""
    state = initial_state()
    for name, args in steps:
        action = ACTIONS[name]
        assert action.guard(config, state, *args), f"{name}{args} is not enabled"
        state = action.successors(config, state, args)[0]
    return state


SHARED = Config(mode=Mode.EXCLUSIVE, workers=2, bounds=Bounds(connections=4))


def test_fork_gives_the_child_the_same_listening_socket() -> None:
    state = run(SHARED, ("start_master", ()), ("spawn_worker", (1, 0)))
    master, worker = state.processes
    assert master.fds == worker.fds == frozenset({0})


def test_the_socket_survives_while_any_process_holds_it() -> None:
    state = run(SHARED, ("start_master", ()), ("spawn_worker", (1, 0)), ("connect", ()))
    state = close_descriptor(state, 1, 0)
    assert state.listener(0).listening
    assert state.connection(0).fate is Fate.QUEUED


def test_closing_the_last_descriptor_resets_the_queue() -> None:
    state = run(SHARED, ("start_master", ()), ("spawn_worker", (1, 0)), ("connect", ()))
    state = close_descriptor(close_descriptor(state, 1, 0), 2, 0)
    assert not state.listener(0).listening
    assert state.connection(0).fate is Fate.ABORTED


def test_the_queue_holds_backlog_plus_one_then_drops_syns() -> None:
    config = Config(mode=Mode.EXCLUSIVE, workers=1, backlog=1, bounds=Bounds(connections=4))
    state = run(config, ("start_master", ()), ("connect", ()), ("connect", ()), ("connect", ()))
    fates = [c.fate for c in state.connections]
    assert fates == [Fate.QUEUED, Fate.QUEUED, Fate.DROPPED]


def test_a_dead_worker_resets_its_connection_in_flight_but_not_the_queue() -> None:
    state = run(
        SHARED,
        ("start_master", ()),
        ("spawn_worker", (1, 0)),
        ("connect", ()),
        ("connect", ()),
        ("accept", (2, 0)),
    )
    state = exit_process(state, 2)
    assert [c.fate for c in state.connections] == [Fate.RESET, Fate.QUEUED]


def test_bind_fails_against_a_listener_unless_both_use_reuseport() -> None:
    shared = run(SHARED, ("start_master", ()))
    assert bind_conflicts(shared, 0, reuseport=False)
    assert bind_conflicts(shared, 0, reuseport=True)
    group = run(Config(mode=Mode.REUSEPORT, workers=2), ("start_master", ()))
    assert not bind_conflicts(group, 0, reuseport=True)
    assert bind_conflicts(group, 0, reuseport=False)


def test_reuseport_hashes_a_connection_to_any_member_of_the_group() -> None:
    config = Config(mode=Mode.REUSEPORT, workers=3, defer_accept=False)
    state = run(config, ("start_master", ()))
    successors = ACTIONS["connect"].successors(config, state, ())
    assert sorted(s.connection(0).listener for s in successors) == [0, 1, 2]


def test_a_connection_may_be_held_back_by_defer_accept_unless_pinned() -> None:
    either = Config(mode=Mode.BLOCKING, workers=1)
    state = run(either, ("start_master", ()))
    fates = {s.connection(0).fate for s in ACTIONS["connect"].successors(either, state, ())}
    assert fates == {Fate.QUEUED, Fate.DEFERRED}
    pinned = Config(mode=Mode.BLOCKING, workers=1, defer_accept=True)
    fates = {s.connection(0).fate for s in ACTIONS["connect"].successors(pinned, state, ())}
    assert fates == {Fate.DEFERRED}


def test_poll_wakes_every_idle_worker_and_exclusive_wakes_one() -> None:
    steps = (
        ("start_master", ()),
        ("spawn_worker", (1, 0)),
        ("spawn_worker", (1, 1)),
        ("connect", ()),
        ("accept", (2, 0)),
    )
    herd = run(Config(mode=Mode.POLL, workers=2), *steps)
    one = run(Config(mode=Mode.EXCLUSIVE, workers=2), *steps)
    assert herd.connection(0).wakeups == 2
    assert one.connection(0).wakeups == 1


def test_an_orphan_is_reparented_to_init() -> None:
    config = Config(mode=Mode.EXCLUSIVE, workers=1, bounds=Bounds(master_kills=1))
    state = run(config, ("start_master", ()), ("spawn_worker", (1, 0)), ("kill_master", (1,)))
    (worker,) = state.processes
    assert worker.parent == 0
    assert state.is_orphan(worker)


def test_a_zombie_inherited_by_init_is_reaped_and_its_mutex_released() -> None:
    config = Config(mode=Mode.MUTEX, workers=1, bounds=Bounds(kills=1, master_kills=1))
    state = run(
        config,
        ("start_master", ()),
        ("spawn_worker", (1, 0)),
        ("acquire_mutex", (2,)),
        ("kill_worker", (2,)),
        ("kill_master", (1,)),
    )
    assert state.processes == ()
    assert state.mutex == 0


def test_a_new_master_starts_with_a_free_mutex() -> None:
    config = Config(mode=Mode.MUTEX, workers=1, bounds=Bounds(master_kills=1, starts=2))
    state = run(config, ("start_master", ()), ("spawn_worker", (1, 0)), ("acquire_mutex", (2,)))
    state = run_from(
        config, state, ("kill_master", (1,)), ("exit_worker", (2,)), ("start_master", ())
    )
    assert state.mutex == 0
    assert [p.role.value for p in state.processes] == ["master"]


def test_a_stopped_worker_outlives_term_until_the_sigkill_escalation() -> None:
    config = Config(mode=Mode.EXCLUSIVE, workers=1, bounds=Bounds(stops=1, shutdowns=1))
    state = run(
        config,
        ("start_master", ()),
        ("spawn_worker", (1, 0)),
        ("stop_worker", (2,)),
        ("fast_shutdown", (1,)),
    )
    worker = state.process(2)
    assert worker is not None
    assert worker.is_alive
    state = run_from(config, state, ("kill_stragglers", (1,)))
    assert state.process(2) is not None
    assert not state.process(2).is_alive  # type: ignore[union-attr]


def test_passfd_workers_hold_no_listening_socket() -> None:
    state = run(Config(mode=Mode.PASSFD, workers=1), ("start_master", ()), ("spawn_worker", (1, 0)))
    master, worker = state.processes
    assert master.fds == frozenset({0})
    assert worker.fds == frozenset()


def test_reuseport_workers_keep_every_clone_or_only_their_own() -> None:
    steps = (("start_master", ()), ("spawn_worker", (1, 1)))
    nginx = run(Config(mode=Mode.REUSEPORT, workers=2), *steps)
    own = run(Config(mode=Mode.REUSEPORT, workers=2, workers_keep_all_clones=False), *steps)
    assert nginx.processes[1].fds == frozenset({0, 1})
    assert own.processes[1].fds == frozenset({1})


def run_from(config: Config, state: System, *steps: tuple[str, tuple[int, ...]]) -> System:
    """Apply ``steps`` from ``state``, taking the first successor of each."""
    for name, args in steps:
        action = ACTIONS[name]
        assert action.guard(config, state, *args), f"{name}{args} is not enabled"
        state = action.successors(config, state, args)[0]
    return state


def test_a_worker_told_to_quit_may_close_a_never_used_connection_or_wait_for_it() -> None:
    steps = (
        ("start_master", ()),
        ("spawn_worker", (1, 0)),
        ("connect", ()),
        ("accept", (2, 0)),
        ("graceful_shutdown", (1,)),
        ("begin_graceful_exit", (2,)),
    )
    config = Config(mode=Mode.EXCLUSIVE, workers=1, bounds=Bounds(shutdowns=1))
    state = run(config, *steps)
    assert state.connection(0).fate is Fate.ACCEPTED
    assert not ACTIONS["exit_worker"].guard(config, state, 2)
    assert ACTIONS["close_idle_connection"].guard(config, state, 0)
    closed = run_from(config, state, ("close_idle_connection", (0,)))
    assert closed.connection(0).fate is Fate.CLOSED
    assert ACTIONS["exit_worker"].guard(config, closed, 2)
