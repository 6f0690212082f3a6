"""Which way a server shares its listening sockets, inferred from one :class:`ServerSnapshot`.

The modes are ARCHITECTURE.md's: ``blocking``, ``poll``, ``exclusive``, ``mutex``, ``reuseport``
(clones created and kept by the master, nginx), ``passfd`` (Node cluster's round robin), plus the
unsafe ``reuseport-private`` (each worker binds its own clone after fork, gunicorn
``--reuse-port``, B10) and ``unknown`` when what /proc shows does not decide.

The evidence, per listening address (DOMAIN §8 and the experiments cited):

===================  ============================================================================
reuseport            several LISTEN inodes on one address (K7); the master holds them (N1) or
reuseport-private    only workers hold them, one each (G3)
passfd               workers exist but only the master holds the listener (J1 SCHED_RR)
exclusive            every holding worker has it in an epoll set with EPOLLEXCLUSIVE (N3, E5)
poll                 every holding worker has it in an epoll set without EPOLLEXCLUSIVE (E3), or
                     no epoll and a worker sleeps in select/poll (G1 ``poll_schedule_timeout``)
mutex                workers use epoll but at most one has the listener registered (N3 mutex on);
                     or one worker holds a file lock the others wait for (/proc/locks: an
                     flock()/fcntl() accept mutex, Apache §3); or one worker sleeps on the
                     listener while every other one sleeps on a lock (wchan
                     ``locks_lock_inode_wait`` or a futex: a process-shared pthread mutex)
blocking             a worker sleeps in ``inet_csk_accept`` and none in epoll, select or poll (E3,
                     K3), whether or not the listener sits in an epoll set: Apache prefork with
                     one ``Listen`` adds it to a pollset it never waits on (DOMAIN §3)
===================  ============================================================================

Discussion:
    The inference reads a moment, so it can be wrong in both directions: ``mutex`` is also what
    an epoll server looks like in the instant between two workers' registrations, and busy
    workers have no telling wchan (``unknown``). We prefer ``unknown`` to a guess whenever the
    holding workers disagree, and we say why in :attr:`ModeInference.reason`, so that a reader
    can check the evidence. Deciding from process titles ("nginx: worker process") was rejected:
    the verifier must work on servers it has never heard of.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from forkshare.conformance.observe.observer import ProcessView, ServerSnapshot
from forkshare.conformance.observe.procfs import FileLock
from forkshare.conformance.observe.role import Role

# DOMAIN §8: what an idle worker sleeps in. Suffixes like ".constprop.0" vary by kernel build.
_BLOCKING_WCHAN = ("inet_csk_accept",)
_POLL_WCHAN = ("poll_schedule_timeout", "do_select", "do_sys_poll", "core_sys_select")
_ON_LISTENER_WCHAN = _BLOCKING_WCHAN + _POLL_WCHAN
# Blocked on a lock: flock()/fcntl() (fs/locks.c) or a futex (a process-shared pthread mutex,
# APR's default accept mutex since 1.7, DOMAIN §3).
_LOCK_WCHAN = ("locks_lock_inode_wait", "flock_lock_inode_wait", "fcntl_setlk", "futex_")


class SharingMode(enum.StrEnum):
    """How the processes of a server share their listening sockets (ARCHITECTURE.md)."""

    BLOCKING = "blocking"
    POLL = "poll"
    EXCLUSIVE = "exclusive"
    MUTEX = "mutex"
    REUSEPORT = "reuseport"
    REUSEPORT_PRIVATE = "reuseport-private"
    PASSFD = "passfd"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ModeInference:
    """The inferred mode and the evidence for it, in one sentence a reader can check."""

    mode: SharingMode
    reason: str


def infer_mode(snap: ServerSnapshot) -> ModeInference:
    """Infer the sharing mode of ``snap``'s server (see the module table for the evidence).

    Returns:
        One mode when every listening address agrees, else ``unknown`` with each address's
        verdict in the reason.
    """
    groups = snap.reuseport_groups()
    if not groups:
        return ModeInference(SharingMode.UNKNOWN, "no listening socket")
    verdicts = {address: _infer_address(snap, inodes) for address, inodes in groups.items()}
    modes = {verdict.mode for verdict in verdicts.values()}
    if len(modes) == 1:
        return next(iter(verdicts.values()))
    reasons = "; ".join(f"{address}: {v.mode} ({v.reason})" for address, v in verdicts.items())
    return ModeInference(SharingMode.UNKNOWN, f"the listening addresses disagree: {reasons}")


def _acceptors(snap: ServerSnapshot) -> tuple[ProcessView, ...]:
    """Workers and orphans: the processes expected to accept."""
    return tuple(p for p in snap.processes if p.role in (Role.WORKER, Role.ORPHAN))


def _infer_address(snap: ServerSnapshot, inodes: tuple[int, ...]) -> ModeInference:
    if len(inodes) > 1:
        return _infer_reuseport(snap, inodes)
    [inode] = inodes
    acceptors = _acceptors(snap)
    if not acceptors:
        return ModeInference(SharingMode.UNKNOWN, "a single process: no workers share the socket")
    holding = tuple(p for p in acceptors if inode in p.held_inodes)
    if not holding:
        return ModeInference(
            SharingMode.PASSFD,
            f"only the master holds socket:[{inode}]; {len(acceptors)} workers hold "
            f"{sum(len(p.connections) for p in acceptors)} accepted connections",
        )
    return _infer_shared(inode, holding, snap.locks)


def _infer_reuseport(snap: ServerSnapshot, inodes: tuple[int, ...]) -> ModeInference:
    masters = snap.with_role(Role.MASTER)
    held_by_master = [i for i in inodes if any(i in m.held_inodes for m in masters)]
    if held_by_master:
        return ModeInference(
            SharingMode.REUSEPORT,
            f"{len(inodes)} sockets in one SO_REUSEPORT group; the master holds "
            f"{len(held_by_master)} of them",
        )
    return ModeInference(
        SharingMode.REUSEPORT_PRIVATE,
        f"{len(inodes)} sockets in one SO_REUSEPORT group, none held by a master: "
        "each worker's queue dies with it (K8)",
    )


def _infer_shared(
    inode: int, holding: tuple[ProcessView, ...], locks: tuple[FileLock, ...]
) -> ModeInference:
    # A worker blocked on a lock can accept nothing: the lock decides first, whatever the
    # holder waits in (a blocking accept or a poll).
    by_lock = _infer_from_locks(inode, holding, locks)
    if by_lock is not None:
        return by_lock
    if _sleep_in_accept_only(holding):
        return ModeInference(
            SharingMode.BLOCKING,
            f"{len(holding)} workers share socket:[{inode}]; idle ones sleep in accept() (K3), "
            "none in epoll, select or poll",
        )
    registered = [p for p in holding if inode in p.registered_inodes]
    exclusive = [p for p in registered if _registration_is_exclusive(p, inode)]
    n = len(holding)
    if registered and len(registered) == n and len(exclusive) == n:
        return ModeInference(
            SharingMode.EXCLUSIVE, f"{n} workers share socket:[{inode}], all with EPOLLEXCLUSIVE"
        )
    if registered and len(registered) == n and not exclusive:
        return ModeInference(
            SharingMode.POLL, f"{n} workers share socket:[{inode}], all in plain epoll sets (herd)"
        )
    if registered and exclusive and len(exclusive) != len(registered):
        return ModeInference(
            SharingMode.UNKNOWN, f"socket:[{inode}] registered both with and without EXCLUSIVE"
        )
    if n > 1 and len(registered) <= 1 and _use_epoll(holding):
        return ModeInference(
            SharingMode.MUTEX,
            f"{n} workers share socket:[{inode}] but {len(registered)} has it in its epoll set "
            "(only the accept-mutex holder registers it)",
        )
    return _infer_from_wchan(inode, holding)


def _sleep_in_accept_only(holding: tuple[ProcessView, ...]) -> bool:
    """True when some holder sleeps in a blocking accept() and none waits in epoll, select or
    poll: an epoll registration nobody waits on wakes nobody (Apache prefork, one ``Listen``:
    ``child_main`` builds a pollset but accepts directly, ``SINGLE_LISTEN_UNSERIALIZED_ACCEPT``)."""
    wchans = [p.wchan for p in holding]
    waits_in_events = any(w.startswith((*_POLL_WCHAN, "do_epoll_wait")) for w in wchans)
    return not waits_in_events and any(w.startswith(_BLOCKING_WCHAN) for w in wchans)


def _registration_is_exclusive(process: ProcessView, inode: int) -> bool:
    return any(r.is_exclusive for r in process.registrations if r.inode == inode)


def _use_epoll(holding: tuple[ProcessView, ...]) -> bool:
    """True when the workers are event-driven: some worker registered the listener or sleeps in
    epoll_wait (an nginx worker without the mutex does)."""
    return any(p.registrations or p.wchan.startswith("do_epoll_wait") for p in holding)


def _infer_from_locks(
    inode: int, holding: tuple[ProcessView, ...], locks: tuple[FileLock, ...]
) -> ModeInference | None:
    """``mutex`` when the workers take turns on a lock around accept, else None: one worker
    holds a file lock the others wait for, or one sleeps on the listener and every other one on
    a lock (Apache prefork with several Listen lines, §3; the zoo's flock_mutex)."""
    pids = {p.pid for p in holding}
    for file in sorted({lock.file for lock in locks}):
        on_file = [lock for lock in locks if lock.file == file and lock.pid in pids]
        holders = {lock.pid for lock in on_file if not lock.waiting}
        waiters = {lock.pid for lock in on_file if lock.waiting} - holders
        if len(holders) == 1 and waiters:
            [holder] = holders
            kind = on_file[0].kind
            return ModeInference(
                SharingMode.MUTEX,
                f"{len(holding)} workers share socket:[{inode}]; worker {holder} holds a {kind} "
                f"lock on file {file} that {len(waiters)} other worker(s) wait for (/proc/locks: "
                "an accept mutex)",
            )
    on_listener = [p for p in holding if p.wchan.startswith(_ON_LISTENER_WCHAN)]
    on_lock = [p for p in holding if p.wchan.startswith(_LOCK_WCHAN)]
    if len(holding) > 1 and len(on_listener) == 1 and len(on_lock) == len(holding) - 1:
        wchans = ", ".join(sorted({p.wchan for p in on_lock}))
        return ModeInference(
            SharingMode.MUTEX,
            f"{len(holding)} workers share socket:[{inode}]; worker {on_listener[0].pid} waits "
            f"on it, the others wait for a lock ({wchans}): an accept mutex",
        )
    return None


def _infer_from_wchan(inode: int, holding: tuple[ProcessView, ...]) -> ModeInference:
    wchans = sorted({p.wchan for p in holding})
    if any(w.startswith(_BLOCKING_WCHAN) for w in wchans):
        return ModeInference(
            SharingMode.BLOCKING,
            f"{len(holding)} workers share socket:[{inode}]; idle ones sleep in accept() (K3)",
        )
    if any(w.startswith(_POLL_WCHAN) for w in wchans):
        return ModeInference(
            SharingMode.POLL,
            f"{len(holding)} workers share socket:[{inode}]; idle ones sleep in select/poll (G1)",
        )
    return ModeInference(
        SharingMode.UNKNOWN,
        f"{len(holding)} workers share socket:[{inode}] without epoll registrations; "
        f"wchan {', '.join(w or 'running' for w in wchans)} does not tell how they wait",
    )
