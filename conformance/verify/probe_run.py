"""One short run of a target for discovery: started fresh, looked at through /proc, killed.

This module also owns what every probe shares: :class:`DiscoveryBudget` (the bound of each wait),
:func:`settle` (until the workers exist and sleep) and the cheap per-process looks
(:func:`is_alive`, :func:`live_children`, :func:`holds_listener`).

A :class:`ProbeRun` starts the profile's command (through the one launcher,
:func:`~forkshare.conformance.observe.launch.launch`) in its own process group on a free
127.0.0.1 port, in a scratch directory of its own. :meth:`ProbeRun.look` shows the server as
/proc does, split in two: the server itself (the launched process and its descendants) and the
processes *outside* that tree that hold one of its listening sockets (a leaked descriptor: a
daemonised helper, ``no_leaked_listener``). Closing the run kills the group, and every process of
the tree or outside it that was seen holding the listener (started after the group, checked by
:meth:`~forkshare.conformance.observe.process_group.ProcessGroup.signal_descendant`), then removes
the scratch directory.

Discussion:
    *The tree, not the process group, is the server.* A helper that calls ``setsid()`` leaves the
    group, and a worker orphaned by its master's death leaves the tree but not the group; a
    structural definition (descendants of what we launched) is the only one that needs no name
    or title. The cost: a server that daemonises (the launched process exits and leaves its
    children) has no tree; it is then taken to be the launched session's processes, and a note
    says so (run it in the foreground to be judged properly).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

from forkshare.conformance.observe import procfs
from forkshare.conformance.observe.deadline import poll_until
from forkshare.conformance.observe.errors import (
    NoSuchProcessError,
    NothingListensError,
    ProcAccessDeniedError,
)
from forkshare.conformance.observe.launch import RunningTarget, free_port, launch
from forkshare.conformance.observe.observer import ProcessView, ServerSnapshot, snapshot
from forkshare.conformance.observe.process_group import ProcessGroup
from forkshare.conformance.observe.role import Role
from forkshare.conformance.verify.profile import Profile
from forkshare.conformance.verify.target import command_line

GONE_STATES = frozenset({"Z", "X"})
"""/proc states of a process that has exited (a zombie waits only to be reaped)."""
POLL = 0.01
"""Seconds between two cheap looks (a process's children, stat or fd links)."""
LOOK = 0.05
"""Seconds between two full looks (each scans every fd table in /proc)."""
CLOSE_TIMEOUT = 1.0
"""Seconds :meth:`ProbeRun.close` waits for the port's last holder to be gone."""
PARTIAL_REQUEST = b"GET / HTTP/1.1\r\nHost: forkshare\r\n"
"""A request head without its end: whoever accepts it holds it while waiting for the rest."""


@dataclass(frozen=True, slots=True)
class DiscoveryBudget:
    """The bound of every wait of discovery, in seconds (the probes are described in
    :mod:`~forkshare.conformance.verify.structure_probe` and
    :mod:`~forkshare.conformance.verify.probes`)."""

    start: float = 10.0
    """Until the target's port listens (each of the three runs)."""
    workers: float = 5.0
    """Until the workers exist and sleep."""
    first_client: float = 1.0
    """When the master has listened alone this long, it is sent a partial request."""
    accept_grace: float = 0.5
    """How long the master alone must hold that request to be judged not prefork."""
    looks: int = 5
    """Snapshots the mode is inferred from (LOOK apart): one look can catch a transition."""
    defer: float = 0.5
    """How long a silent client is watched (a deferred one stays SYN_RECV throughout)."""
    respawn: float = 6.0
    """Until a SIGKILLed worker is replaced (twice the default respawn bound)."""
    settle: float = 2.0
    """Between two probes of one run: until the workers sleep again."""
    reload_held: float = 1.0
    """How long the old workers are held (SIGSTOP) after the reload signal: a server that forks
    the new generation first shows a new worker meanwhile (F4)."""
    reload: float = 4.0
    """Until the first new worker appears after the reload signal (held time included)."""
    parent_death: float = 10.0
    """The parent-death cap when the profile claims workers-exit (the default)."""
    orphans_claimed: float = 2.0
    """The cap when the profile claims orphans-serve: a long wait would show nothing more."""
    partial_accept: float = 1.0
    """Until a worker accepts the graceful-stop probe's partial request."""
    graceful: float = 1.5
    """How long a graceful stop with a stopped worker is watched."""


def seconds_since(started: float) -> float:
    """Seconds of ``time.monotonic()`` since ``started``."""
    return time.monotonic() - started


@dataclass(frozen=True, slots=True)
class ServerView:
    """One look at a probe run.

    Attributes:
        server: the snapshot restricted to the server's own processes (the launched tree).
        leaked: processes outside the tree that hold one of its listening sockets.
    """

    server: ServerSnapshot
    leaked: tuple[ProcessView, ...]

    @property
    def workers(self) -> tuple[ProcessView, ...]:
        """The server's workers (children of a master among its processes)."""
        return self.server.with_role(Role.WORKER)

    @property
    def master(self) -> int | None:
        """The workers' parent; without workers, the one master-role process (or None)."""
        parents = Counter(w.ppid for w in self.workers)
        if parents:
            return parents.most_common(1)[0][0]
        masters = self.server.with_role(Role.MASTER)
        return masters[0].pid if len(masters) == 1 else None

    @property
    def inodes(self) -> frozenset[int]:
        """The inodes of the server's listening sockets."""
        return frozenset(s.inode for s in self.server.listeners)

    def is_settled(self, workers: int) -> bool:
        """At least ``workers`` workers exist and every one sleeps (state S: waiting for a
        connection or for its turn)."""
        return len(self.workers) >= workers and all(w.state == "S" for w in self.workers)


class ProbeRun:
    """A target started fresh for one probe (see the module docstring); a context manager."""

    def __init__(self, profile: Profile, workers: int, start_timeout: float) -> None:
        """Start the target and wait (bounded by ``start_timeout``) until its port listens.

        Raises:
            TargetFailedToStartError: the target exited or did not listen in time (exit 3).
            ProfileError: the profile's command cannot be built.
        """
        self.directory = Path(tempfile.mkdtemp(prefix="forkshare-discover-"))
        self.port = free_port()
        self.workers = workers
        self.seen: set[int] = set()
        self.notes: list[str] = []
        self._daemonised = False
        try:
            argv = command_line(profile, self.port, workers, self.directory)
            self.target: RunningTarget = launch(
                argv, self.port, timeout=start_timeout, output_dir=self.directory
            )
        except BaseException:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise

    @property
    def group(self) -> ProcessGroup:
        """The launched command's process group."""
        return self.target.group

    @property
    def root(self) -> int:
        """The launched process's pid (also its group and session id)."""
        return self.target.group.pid

    def tree(self) -> frozenset[int]:
        """The server's processes: the launched process and its descendants; once the launched
        process has exited (a daemonising server), the launched session's processes."""
        if self.group.is_running():
            return _descendants({self.root})
        sessions = (procfs.read_stat(pid) for pid in procfs.list_pids())
        members = {s.pid for s in sessions if s is not None and s.session == self.root}
        if members and not self._daemonised:
            self._daemonised = True
            self.notes.append(
                f"the launched process {self.root} exited and left its children running (it "
                "daemonises): its session is taken as the server; run it in the foreground"
            )
        return _descendants(members)

    def look(self) -> ServerView | None:
        """The server and its leaked holders now, or None while nothing listens on the port."""
        try:
            snap = snapshot(port=self.port)
        except (NothingListensError, NoSuchProcessError, ProcAccessDeniedError):
            return None
        tree = self.tree()
        server = replace(snap, processes=tuple(p for p in snap.processes if p.pid in tree))
        leaked = tuple(p for p in snap.processes if p.pid not in tree and p.held_inodes)
        self.seen |= {p.pid for p in snap.processes}
        return ServerView(server, leaked)

    def signal(self, pid: int, signum: int) -> bool:
        """Send ``signum`` to ``pid`` if it is one of ours: the launched process while we have
        not reaped it, or a process started after it (a reused pid is refused).

        Returns:
            True when the signal was sent.
        """
        if pid == self.root:
            running = self.group.is_running()
            self.group.send(signum)
            return running
        self.seen.add(pid)
        return self.group.signal_descendant(pid, signum)

    def close(self) -> None:
        """Kill the group, every process seen and every later holder of the port's listener
        (a helper that left the group after the last look); remove the scratch directory."""
        try:
            self.group.stop(first=signal.SIGKILL, grace=1.0, extra_pids=tuple(self.seen))
            poll_until(self._no_holder_left, CLOSE_TIMEOUT, interval=LOOK)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _no_holder_left(self) -> bool:
        """SIGKILL the processes of ours that still hold a listener on the port; True when
        nothing listens there any more (a holder not ours is left alone: the wait then ends
        at its bound)."""
        try:
            holders = [p.pid for p in snapshot(port=self.port).processes if p.held_inodes]
        except (NothingListensError, NoSuchProcessError, ProcAccessDeniedError):
            return True
        for pid in holders:
            self.group.signal_descendant(pid, signal.SIGKILL)
        return False

    def __enter__(self) -> ProbeRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def settle(run: ProbeRun, timeout: float) -> ServerView | None:
    """Wait (bounded by ``timeout``) until the run's workers exist and sleep.

    Returns:
        The settled look, or on timeout the last one (None if nothing ever listened).
    """
    started = time.monotonic()
    last: ServerView | None = None
    while True:
        view = run.look()
        last = view or last
        if view is not None and view.is_settled(run.workers):
            return view
        if seconds_since(started) >= timeout:
            return last
        time.sleep(LOOK)


@contextlib.contextmanager
def partial_client(port: int) -> Iterator[socket.socket]:
    """A client connected to 127.0.0.1:``port`` that sent :data:`PARTIAL_REQUEST` (a request
    in hand for whoever accepts it; data, so TCP_DEFER_ACCEPT lets it in, K19); closed at the
    end."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=1.0)
    try:
        sock.sendall(PARTIAL_REQUEST)
        yield sock
    finally:
        sock.close()


def _descendants(roots: set[int]) -> frozenset[int]:
    found = set(roots)
    frontier = list(roots)
    while frontier:
        for child in procfs.read_children(frontier.pop()):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return frozenset(found)


def live_children(pid: int) -> frozenset[int]:
    """The children of ``pid`` that have not exited (zombies left out)."""
    return frozenset(child for child in procfs.read_children(pid) if is_alive(child))


def is_alive(pid: int) -> bool:
    """True while ``pid`` exists and has not exited (a zombie has)."""
    stat = procfs.read_stat(pid)
    return stat is not None and stat.state not in GONE_STATES


def holds_listener(pid: int, inodes: frozenset[int]) -> bool:
    """True when ``pid`` has an fd on one of the listening sockets ``inodes``."""
    with contextlib.suppress(ProcAccessDeniedError):
        links = procfs.read_fd_links(pid) or {}
        return any(procfs.socket_inode(link) in inodes for link in links.values())
    return False
