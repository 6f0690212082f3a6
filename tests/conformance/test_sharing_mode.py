"""Inferring the sharing mode: from hand-built snapshots (the evidence table of
forkshare.conformance.observe.sharing_mode, row by row) and from the tiny server running in each mode."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from forkshare.conformance.observe.launch import RunningTarget
from forkshare.conformance.observe.observer import (
    EpollRegistration,
    ListenerFd,
    ListeningSocket,
    ProcessView,
    ServerSnapshot,
)
from forkshare.conformance.observe.procfs import (
    EPOLLEXCLUSIVE,
    Endpoint,
    FileLock,
    ListenCounters,
)
from forkshare.conformance.observe.role import Role
from forkshare.conformance.observe.sharing_mode import SharingMode, infer_mode

StartTiny = Callable[[str, int], RunningTarget]  # the start_tiny fixture (conftest.py)
ADDRESS = Endpoint("127.0.0.1", 8080)


def process(
    pid: int,
    role: Role,
    holds: tuple[int, ...] = (10,),
    registered: dict[int, int] | None = None,
    wchan: str = "",
) -> ProcessView:
    """A process holding ``holds`` at fd 3, 4, … and registering ``registered`` (inode→events)."""
    return ProcessView(
        pid=pid,
        ppid=1 if role == Role.MASTER else 100,
        role=role,
        state="S",
        name="server",
        cmdline="server",
        listener_fds=tuple(ListenerFd(3 + i, inode, True, True) for i, inode in enumerate(holds)),
        registrations=tuple(
            EpollRegistration(9, 3, inode, events) for inode, events in (registered or {}).items()
        ),
        connections=(),
        voluntary_switches=0,
        nonvoluntary_switches=0,
        wchan=wchan,
    )


def snap(
    *processes: ProcessView, inodes: tuple[int, ...] = (10,), locks: tuple[FileLock, ...] = ()
) -> ServerSnapshot:
    return ServerSnapshot(
        root_pid=None,
        port=ADDRESS.port,
        processes=processes,
        listeners=tuple(ListeningSocket(ADDRESS, inode, 0) for inode in inodes),
        queued=(),
        counters=ListenCounters(0, 0),
        locks=locks,
    )


MASTER = process(100, Role.MASTER)
EXCLUSIVE = 0x19 | EPOLLEXCLUSIVE


def test_every_worker_registered_exclusive_is_exclusive() -> None:
    workers = [process(p, Role.WORKER, registered={10: EXCLUSIVE}) for p in (101, 102)]
    assert infer_mode(snap(MASTER, *workers)).mode == SharingMode.EXCLUSIVE


def test_every_worker_registered_plainly_is_poll() -> None:
    workers = [process(p, Role.WORKER, registered={10: 0x19}) for p in (101, 102)]
    assert infer_mode(snap(MASTER, *workers)).mode == SharingMode.POLL


def test_only_one_epoll_worker_registered_is_the_accept_mutex() -> None:
    holder = process(101, Role.WORKER, registered={10: 0x19})
    waiting = process(102, Role.WORKER, wchan="do_epoll_wait")
    inference = infer_mode(snap(MASTER, holder, waiting))
    assert inference.mode == SharingMode.MUTEX  # N3 with accept_mutex on
    assert "1 has it in its epoll set" in inference.reason


def test_workers_asleep_in_accept_are_blocking() -> None:
    workers = [process(p, Role.WORKER, wchan="inet_csk_accept") for p in (101, 102)]
    assert infer_mode(snap(MASTER, *workers)).mode == SharingMode.BLOCKING


def test_workers_asleep_in_accept_with_an_unused_epoll_registration_are_blocking() -> None:
    # Apache prefork, one Listen: each child adds the listener to a pollset and never waits on it
    workers = [
        process(p, Role.WORKER, registered={10: 0x19}, wchan="inet_csk_accept") for p in (101, 102)
    ]
    inference = infer_mode(snap(MASTER, *workers))
    assert inference.mode == SharingMode.BLOCKING
    assert "accept()" in inference.reason


def test_a_worker_in_epoll_wait_beside_one_in_accept_is_not_blocking() -> None:
    workers = [
        process(101, Role.WORKER, registered={10: 0x19}, wchan="inet_csk_accept"),
        process(102, Role.WORKER, registered={10: 0x19}, wchan="do_epoll_wait"),
    ]
    assert infer_mode(snap(MASTER, *workers)).mode == SharingMode.POLL


def test_workers_asleep_in_select_are_poll() -> None:
    wchan = "poll_schedule_timeout.constprop.0"  # gunicorn sync workers, G1
    workers = [process(p, Role.WORKER, wchan=wchan) for p in (101, 102)]
    assert infer_mode(snap(MASTER, *workers)).mode == SharingMode.POLL


def test_busy_workers_without_registrations_are_unknown() -> None:
    workers = [process(p, Role.WORKER, wchan="") for p in (101, 102)]
    inference = infer_mode(snap(MASTER, *workers))
    assert inference.mode == SharingMode.UNKNOWN
    assert "running" in inference.reason


def test_mixed_exclusive_and_plain_registrations_are_unknown() -> None:
    workers = [
        process(101, Role.WORKER, registered={10: EXCLUSIVE}),
        process(102, Role.WORKER, registered={10: 0x19}),
    ]
    assert infer_mode(snap(MASTER, *workers)).mode == SharingMode.UNKNOWN


SELECT = "poll_schedule_timeout.constprop.0"
LOCK_FILE = "fe:00:2147017"


def test_one_worker_holding_a_file_lock_the_others_wait_for_is_the_accept_mutex() -> None:
    # The zoo's flock_mutex (Apache prefork with several Listen lines, DOMAIN §3): the holder
    # sleeps in select() on the listener, the other worker in flock().
    holder = process(101, Role.WORKER, wchan=SELECT)
    waiter = process(102, Role.WORKER, wchan="locks_lock_inode_wait")
    locks = (
        FileLock(LOCK_FILE, 101, "FLOCK", "WRITE", waiting=False),
        FileLock(LOCK_FILE, 102, "FLOCK", "WRITE", waiting=True),
    )
    inference = infer_mode(snap(MASTER, holder, waiter, locks=locks))
    assert inference.mode == SharingMode.MUTEX
    assert "worker 101 holds a FLOCK lock" in inference.reason


def test_a_lock_nobody_waits_for_proves_no_mutex() -> None:
    workers = [process(p, Role.WORKER, wchan=SELECT) for p in (101, 102)]
    locks = (FileLock(LOCK_FILE, 101, "POSIX", "WRITE", waiting=False),)  # e.g. a pid file
    assert infer_mode(snap(MASTER, *workers, locks=locks)).mode == SharingMode.POLL


def test_one_worker_on_the_listener_and_the_others_on_a_futex_is_the_accept_mutex() -> None:
    # A process-shared pthread mutex (APR >= 1.7, DOMAIN §3) shows no /proc/locks entry.
    holder = process(101, Role.WORKER, wchan="inet_csk_accept")
    waiters = [process(p, Role.WORKER, wchan="futex_wait_queue") for p in (102, 103)]
    inference = infer_mode(snap(MASTER, holder, *waiters))
    assert inference.mode == SharingMode.MUTEX
    assert "worker 101 waits on it" in inference.reason


def test_workers_that_all_sleep_on_a_futex_are_not_a_mutex() -> None:
    workers = [process(p, Role.WORKER, wchan="futex_wait_queue") for p in (101, 102)]
    assert infer_mode(snap(MASTER, *workers)).mode == SharingMode.UNKNOWN


def test_clones_held_by_the_master_are_reuseport() -> None:
    master = process(100, Role.MASTER, holds=(10, 11))
    workers = [process(101, Role.WORKER, holds=(10, 11), registered={10: 0x2019})]
    assert infer_mode(snap(master, *workers, inodes=(10, 11))).mode == SharingMode.REUSEPORT


def test_clones_held_only_by_workers_are_private_reuseport() -> None:
    master = process(100, Role.MASTER, holds=())
    workers = [process(101, Role.WORKER, holds=(10,)), process(102, Role.WORKER, holds=(11,))]
    inference = infer_mode(snap(master, *workers, inodes=(10, 11)))
    assert inference.mode == SharingMode.REUSEPORT_PRIVATE


def test_a_listener_only_the_master_holds_is_passfd() -> None:
    workers = [process(p, Role.WORKER, holds=()) for p in (101, 102)]
    assert infer_mode(snap(MASTER, *workers)).mode == SharingMode.PASSFD


def test_a_single_process_or_no_listener_is_unknown() -> None:
    assert infer_mode(snap(MASTER)).mode == SharingMode.UNKNOWN
    assert infer_mode(snap(MASTER, inodes=())).reason == "no listening socket"


def test_orphans_count_as_acceptors() -> None:
    orphans = [process(p, Role.ORPHAN, registered={10: EXCLUSIVE}) for p in (101, 102)]
    assert infer_mode(snap(*orphans)).mode == SharingMode.EXCLUSIVE


@pytest.mark.process
@pytest.mark.parametrize(
    "mode", ["blocking", "poll", "exclusive", "reuseport", "reuseport-private", "passfd"]
)
def test_the_tiny_server_is_recognised_in_each_mode(start_tiny: StartTiny, mode: str) -> None:
    server = start_tiny(mode, 2)
    inference = infer_mode(server.snapshot())
    assert inference.mode == SharingMode(mode), inference.reason
