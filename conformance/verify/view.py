"""A real server seen as the model sees a state: an :class:`~forkshare.model.observation.Observation`
with real pids and inodes, so the model's monitors (:mod:`forkshare.model.monitors`) and the timed
properties (:mod:`~forkshare.conformance.verify.timing`) judge it with the same functions they
are tested with on the model.

:class:`ViewBuilder` remembers what it has seen across a run: which processes were the server's
(forked by a master it knew), which listeners existed (a closed one stays in the view, marked not
listening, as the model keeps closed sockets), and the parent each process had when first seen.

Discussion:
    *Who is a helper.* /proc has no role field. A process holding the port's listener is a master
    (the launched root, or a master's child that forks workers: an upgrade), a worker (first seen
    as a master's child), an orphan (a worker whose master died: parent 0 in the view), or none
    of these: a process the server never forked as a worker that still holds its listener — a
    helper with a leaked descriptor (a double-forked log shipper, a CGI). Helpers that hold
    nothing are not the server's business and are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from forkshare.conformance.observe.client import Client
from forkshare.conformance.observe.observer import ServerSnapshot, who_accepted
from forkshare.conformance.observe.procfs import TcpState, read_stat, read_tcp_table
from forkshare.conformance.observe.role import Role as SeenRole
from forkshare.model.observation import ClientView, ListenerView, Observation, Outcome, ProcessView
from forkshare.model.state import Role

_GONE = ("Z", "X")
PENDING = Outcome.PENDING


@dataclass(slots=True)
class ViewBuilder:
    """Builds one :class:`Observation` per look at the target (see the module docstring)."""

    root: int
    """The launched root: the first master."""
    port: int
    masters: set[int] = field(default_factory=set)
    first_parent: dict[int, int] = field(default_factory=dict)
    listeners: dict[int, bool] = field(default_factory=dict)
    """Inode → reuseport (several sockets on the address) for every listener seen."""
    members: set[int] = field(default_factory=set)
    """Every pid seen as the server's (alive or not)."""

    def __post_init__(self) -> None:
        self.masters.add(self.root)

    def build(self, snap: ServerSnapshot | None, clients: Sequence[Client]) -> Observation:
        """The observation now, from ``snap`` (None: nothing listens) and the clients."""
        views = self._processes(snap)
        listening = {lst.inode: lst.rx_queue for lst in snap.listeners} if snap else {}
        if snap is not None:
            for _address, inodes in snap.reuseport_groups().items():
                for inode in inodes:
                    self.listeners[inode] = len(inodes) > 1
        owners = self._owners(snap, clients)
        only = next(iter(self.listeners)) if len(self.listeners) == 1 else -1
        return Observation(
            processes=tuple(sorted(views, key=lambda p: p.pid)),
            listeners=tuple(
                ListenerView(inode, reuseport, inode in listening, listening.get(inode, 0))
                for inode, reuseport in sorted(self.listeners.items())
            ),
            clients=tuple(
                _client_view(i, c.outcome(), owners.get(i, 0), c.requested, only)
                for i, c in enumerate(clients)
            ),
        )

    def _owners(self, snap: ServerSnapshot | None, clients: Sequence[Client]) -> dict[int, int]:
        """Client index → pid holding its accepted connection, from one read of /proc/net/tcp
        and the snapshot's fd tables (the leaf holder when a passfd master still holds it)."""
        ports = {c.local.port: i for i, c in enumerate(clients) if c.local is not None}
        if not ports:
            return {}
        inodes = {
            row.inode: ports[row.remote.port]
            for row in read_tcp_table(None)
            if row.local.port == self.port
            and row.remote.port in ports
            and row.inode != 0
            and row.state != TcpState.LISTEN
        }
        if snap is None:
            return self._owners_by_scan(clients, inodes.values())
        holders: dict[int, list[int]] = {}
        for proc in snap.processes:
            for inode in proc.connections:
                if inode in inodes:
                    holders.setdefault(inodes[inode], []).append(proc.pid)
        return {i: _leaf(snap, pids) for i, pids in holders.items()}

    def _owners_by_scan(self, clients: Sequence[Client], wanted: Iterable[int]) -> dict[int, int]:
        found = {}
        for i in wanted:
            local = clients[i].local
            if local is not None:
                found[i] = who_accepted(local.port, server_port=self.port) or 0
        return found

    def _processes(self, snap: ServerSnapshot | None) -> list[ProcessView]:
        found: dict[int, ProcessView] = {}
        for seen in snap.processes if snap is not None else ():
            self._learn(seen.pid, seen.ppid, seen.role)
            role = self._role(seen.pid, seen.role)
            if role is None:
                continue
            found[seen.pid] = ProcessView(
                pid=seen.pid,
                role=role,
                parent=self._parent(seen.pid, seen.ppid, role),
                alive=seen.state not in _GONE,
                stopped=seen.state in ("T", "t"),
                holds=frozenset(lst.inode for lst in seen.listener_fds),
            )
        for pid in sorted(self.members - set(found)):
            view = self._unlisted(pid)
            if view is not None:
                found[pid] = view
        return list(found.values())

    def _learn(self, pid: int, ppid: int, seen_role: SeenRole) -> None:
        if pid not in self.first_parent:
            self.first_parent[pid] = ppid
        if pid == self.root or self.first_parent[pid] in self.masters:
            self.members.add(pid)
            if seen_role is SeenRole.MASTER and pid != self.root and self._forks_workers(pid):
                self.masters.add(pid)

    def _forks_workers(self, pid: int) -> bool:
        """An upgrade's new master: a child of a master that is itself a parent of members."""
        return any(parent == pid for parent in self.first_parent.values())

    def _role(self, pid: int, seen_role: SeenRole) -> Role | None:
        if pid in self.masters:
            return Role.MASTER
        if pid in self.members:
            return Role.WORKER
        return Role.HELPER if seen_role is not SeenRole.MASTER or pid != self.root else None

    def _parent(self, pid: int, ppid: int, role: Role) -> int:
        if role is Role.MASTER:
            return ppid if ppid in self.masters else 0
        return ppid if ppid in self.masters else 0

    def _unlisted(self, pid: int) -> ProcessView | None:
        """A member the snapshot left out (it holds no listener): still alive?"""
        stat = read_stat(pid)
        if stat is None:
            return None
        role = Role.MASTER if pid in self.masters else Role.WORKER
        return ProcessView(
            pid=pid,
            role=role,
            parent=self._parent(pid, stat.ppid, role),
            alive=stat.state not in _GONE,
            stopped=stat.state in ("T", "t"),
            holds=frozenset(),
        )


def _client_view(cid: int, outcome: str, owner: int, requested: bool, listener: int) -> ClientView:
    """A client in the model's words: its owner while pending; the listener it waits on when
    only one listener ever existed (a reuseport group does not say which member took it)."""
    pending = outcome == PENDING
    waiting = pending and not owner
    return ClientView(
        cid, outcome, owner if pending else 0, 0, requested, listener if waiting else -1
    )


def _leaf(snap: ServerSnapshot, pids: list[int]) -> int:
    """Of several holders, the one none of whose children hold it (J1: the passfd master
    keeps its copy until the worker acknowledges)."""
    parents = {p.ppid for p in snap.processes if p.pid in pids}
    leaves = sorted(pid for pid in pids if pid not in parents)
    return (leaves or sorted(pids))[0]
