"""The black-box observer: what /proc shows about a server's listening sockets, as one value.

:func:`snapshot` returns a :class:`ServerSnapshot`: the server's processes with their roles, the fds
each one holds on each listening socket, which listeners sit in each process's epoll interest list
(and whether EPOLLEXCLUSIVE), context switches and wchan; the listening sockets with their
accept-queue lengths; the connections queued but not yet accepted; and the file locks the
processes hold or wait for (an flock() accept mutex). :func:`who_accepted` answers
"which process owns this client's connection". Nothing here needs the target's cooperation: only
/proc (DOMAIN §8), through :mod:`forkshare.conformance.observe.procfs`.

Usage::

    snap = snapshot(port=8080)            # or snapshot(root_pid=master_pid)
    [listener] = snap.listeners
    snap.holders(listener.inode)          # pids with an fd on it: master and workers when shared
    who_accepted(client.getsockname()[1], server_port=8080)

Discussion:
    *Which processes belong to the server.* ``root_pid`` mode takes the root and its descendants
    (``/proc/PID/task/*/children``). ``port`` mode takes every process holding a LISTEN socket on
    the port. Both then add every holder of those listeners outside that set (orphaned workers,
    N3), every holder of an accepted connection on the port (a passfd worker, J1) and, in port
    mode, the direct children of the holders (idle passfd workers hold nothing) and the common
    parent of two or more holders (a master whose workers bound private sockets holds none, G3).
    Children of pid 1 are never added: a socket-activating init would otherwise pull in the whole
    system.

    *Roles are structural*, because titles are target-specific: a member with a child among the
    members is a ``MASTER`` (an nginx binary upgrade shows two masters, the new one a child of the
    old); one whose parent is a member is a ``WORKER``; a member with neither is an ``ORPHAN`` when
    its ppid is 1 or a given subreaper (the master died and the kernel reparented it, N3), else a
    ``MASTER`` without workers. The cost: a daemonised single-process server (ppid 1) reads as an
    orphan in port mode; ask with ``root_pid`` and the root is always the master.

    *Consistency.* /proc offers no atomic snapshot: the tables are read one file at a time while
    the server runs. A process that vanishes mid-read is dropped; a connection accepted between
    reading /proc/net/tcp and the fd tables can show as queued and held at once. Callers that
    compare with a model make the target quiescent first (SIGSTOP the workers, as the verifier
    does) or retry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from forkshare.conformance.observe import procfs
from forkshare.conformance.observe.errors import (
    NoSuchProcessError,
    NothingListensError,
    ProcAccessDeniedError,
)
from forkshare.conformance.observe.procfs import (
    PROC,
    Endpoint,
    FileLock,
    ListenCounters,
    TcpRow,
    TcpState,
)
from forkshare.conformance.observe.role import Role

# K12: a child in the accept queue has no struct socket yet, so its row shows inode 0; it is
# ESTABLISHED, or CLOSE_WAIT when the client already closed. SYN_RECV rows are handshakes.
_QUEUED_STATES = frozenset({TcpState.ESTABLISHED, TcpState.CLOSE_WAIT, TcpState.SYN_RECV})


@dataclass(frozen=True, slots=True, order=True)
class ListenerFd:
    """One descriptor of a process that points at a listening socket.

    Attributes:
        fd: the descriptor number in that process.
        inode: the listening socket's inode (``socket:[inode]``).
        cloexec: FD_CLOEXEC is set on this descriptor (K2): it will not survive ``exec``.
        nonblocking: O_NONBLOCK is set on the shared open file description.
    """

    fd: int
    inode: int
    cloexec: bool
    nonblocking: bool


@dataclass(frozen=True, slots=True, order=True)
class EpollRegistration:
    """A listening socket in one of a process's epoll interest lists (fdinfo ``tfd:`` line).

    Attributes:
        epoll_fd: the epoll instance's fd number in the process.
        target_fd: the registered fd number (``tfd``).
        inode: the listening socket's inode.
        events: the registered event mask.
    """

    epoll_fd: int
    target_fd: int
    inode: int
    events: int

    @property
    def is_exclusive(self) -> bool:
        """Registered with EPOLLEXCLUSIVE (K5): the kernel wakes one such waiter per event."""
        return bool(self.events & procfs.EPOLLEXCLUSIVE)


@dataclass(frozen=True, slots=True)
class ProcessView:
    """One process of the server as /proc shows it.

    Attributes:
        pid: the process id.
        ppid: its parent's pid (1 or a subreaper once orphaned).
        role: master, worker or orphan (module Discussion).
        state: /proc/PID/stat state: R, S, D, T (stopped), Z …
        name: ``comm``.
        cmdline: the command line joined by spaces (nginx shows its process title here).
        listener_fds: its descriptors on the snapshot's listening sockets, by fd.
        registrations: its epoll registrations of those sockets.
        connections: inodes of accepted connections on the listeners' ports it holds, ascending.
        voluntary_switches: voluntary context switches summed over its threads (wake-ups, E3).
        nonvoluntary_switches: nonvoluntary context switches summed over its threads.
        wchan: the kernel function it sleeps in, "" when running.
    """

    pid: int
    ppid: int
    role: Role
    state: str
    name: str
    cmdline: str
    listener_fds: tuple[ListenerFd, ...]
    registrations: tuple[EpollRegistration, ...]
    connections: tuple[int, ...]
    voluntary_switches: int
    nonvoluntary_switches: int
    wchan: str

    @property
    def held_inodes(self) -> frozenset[int]:
        """The listening sockets this process has at least one fd on."""
        return frozenset(fd.inode for fd in self.listener_fds)

    @property
    def registered_inodes(self) -> frozenset[int]:
        """The listening sockets in this process's epoll interest lists."""
        return frozenset(reg.inode for reg in self.registrations)

    def fds_on(self, inode: int) -> tuple[int, ...]:
        """The fd numbers this process has on the listening socket ``inode``."""
        return tuple(fd.fd for fd in self.listener_fds if fd.inode == inode)


@dataclass(frozen=True, slots=True, order=True)
class ListeningSocket:
    """A socket in the LISTEN state.

    Attributes:
        address: the bound address; several sockets on one address form a SO_REUSEPORT group (K7).
        inode: identifies the socket (and, through fd links, its holders).
        rx_queue: connections in its accept queue now (K11).
    """

    address: Endpoint
    inode: int
    rx_queue: int


@dataclass(frozen=True, slots=True, order=True)
class QueuedConnection:
    """A server-side connection nobody has accepted yet (inode 0, K12).

    Attributes:
        local: the server address it arrived on.
        client: the client's address: match it with the client's ``getsockname()``.
        state: ESTABLISHED or CLOSE_WAIT (in an accept queue), or SYN_RECV (handshaking).
    """

    local: Endpoint
    client: Endpoint
    state: TcpState

    @property
    def in_accept_queue(self) -> bool:
        """Handshake complete: waiting for ``accept()`` (SYN_RECV ones are not yet queued)."""
        return self.state != TcpState.SYN_RECV


@dataclass(frozen=True, slots=True)
class ServerSnapshot:
    """Everything /proc shows about one server's listening sockets at one moment.

    Attributes:
        root_pid: the root the caller asked for, or None in port mode.
        port: the port the caller asked for, or None in root mode.
        processes: the server's processes, by pid.
        listeners: its listening sockets, by address then inode.
        queued: connections on those addresses not yet accepted (K12), by client.
        counters: TcpExt ListenOverflows/ListenDrops of the namespace (K14), for deltas.
        locks: the file locks its processes hold or wait for (/proc/locks): an flock() or
            fcntl() accept mutex shows as one holder and the other workers waiting.
    """

    root_pid: int | None
    port: int | None
    processes: tuple[ProcessView, ...]
    listeners: tuple[ListeningSocket, ...]
    queued: tuple[QueuedConnection, ...]
    counters: ListenCounters
    locks: tuple[FileLock, ...] = ()

    def process(self, pid: int) -> ProcessView | None:
        """The process ``pid``, or None when it is not part of this snapshot."""
        return next((p for p in self.processes if p.pid == pid), None)

    def with_role(self, role: Role) -> tuple[ProcessView, ...]:
        """The processes with ``role``, by pid."""
        return tuple(p for p in self.processes if p.role == role)

    def holders(self, inode: int) -> tuple[int, ...]:
        """Pids with an fd on the listening socket ``inode`` (K1: it lives while any do)."""
        return tuple(p.pid for p in self.processes if inode in p.held_inodes)

    def registrants(self, inode: int) -> tuple[int, ...]:
        """Pids that have the listening socket ``inode`` in an epoll interest list."""
        return tuple(p.pid for p in self.processes if inode in p.registered_inodes)

    def reuseport_groups(self) -> dict[Endpoint, tuple[int, ...]]:
        """Listener inodes by address; an address with several is a SO_REUSEPORT group (K7)."""
        groups: dict[Endpoint, list[int]] = {}
        for listener in self.listeners:
            groups.setdefault(listener.address, []).append(listener.inode)
        return {address: tuple(inodes) for address, inodes in groups.items()}


# ---------------------------------------------------------------- building a snapshot


@dataclass(frozen=True, slots=True)
class _FdScan:
    """Every readable fd table in /proc at one pass, and the pids whose tables were denied."""

    links: Mapping[int, Mapping[int, str]]
    denied: frozenset[int]

    def sockets(self, pid: int) -> dict[int, int]:
        """fd → socket inode for ``pid``."""
        found = ((fd, procfs.socket_inode(link)) for fd, link in self.links.get(pid, {}).items())
        return {fd: inode for fd, inode in found if inode is not None}

    def holders_of(self, inodes: Iterable[int]) -> frozenset[int]:
        """Pids with an fd on any of ``inodes``."""
        wanted = frozenset(inodes)
        return frozenset(pid for pid in self.links if wanted & set(self.sockets(pid).values()))


def _scan_fd_tables(proc: Path) -> _FdScan:
    links: dict[int, Mapping[int, str]] = {}
    denied: set[int] = set()
    for pid in procfs.list_pids(proc):
        try:
            table = procfs.read_fd_links(pid, proc)
        except ProcAccessDeniedError:
            denied.add(pid)
            continue
        if table is not None:
            links[pid] = table
    return _FdScan(links, frozenset(denied))


def snapshot(
    root_pid: int | None = None,
    port: int | None = None,
    *,
    reapers: frozenset[int] = frozenset({1}),
    proc: Path = PROC,
) -> ServerSnapshot:
    """Observe a server through /proc: by its root process, by its port, or both (the port then
    filters the root's listeners).

    Args:
        root_pid: the server's master (or any ancestor): it and its descendants are the server.
        port: a TCP port: the holders of its LISTEN sockets are the server.
        reapers: pids an orphan is reparented to (1 and any known child subreaper).
        proc: the procfs mount, for tests.

    Returns:
        The snapshot; processes that exited while it was taken are left out.

    Raises:
        ValueError: when neither ``root_pid`` nor ``port`` is given (a programming error).
        NoSuchProcessError: when ``root_pid`` does not exist.
        NothingListensError: when no visible process holds a LISTEN socket on ``port``.
        ProcAccessDeniedError: when the fd table of ``root_pid`` or of every holder of a
            listener on ``port`` is unreadable.
    """
    if root_pid is None and port is None:
        raise ValueError("snapshot() needs root_pid, port or both")
    if root_pid is not None and procfs.read_stat(root_pid, proc) is None:
        raise NoSuchProcessError(f"no process {root_pid}: check the pid (ps -ef) or pass --port")
    rows = procfs.read_tcp_table(root_pid, proc)
    scan = _scan_fd_tables(proc)
    if root_pid is not None and root_pid in scan.denied:
        raise ProcAccessDeniedError(
            f"not permitted to read /proc/{root_pid}/fd: run as the server's user or as root"
        )
    tree = _descendants(root_pid, proc) if root_pid is not None else frozenset()
    listeners = _listeners(rows, scan, tree, root_pid, port)
    members = _members(rows, scan, tree, listeners, port is not None and root_pid is None, proc)
    views = _views(members, scan, listeners, rows, proc)
    pids = {view.pid for view in views}
    return ServerSnapshot(
        root_pid=root_pid,
        port=port,
        processes=_assign_roles(views, root_pid, reapers),
        listeners=listeners,
        queued=_queued(rows, listeners),
        counters=procfs.read_listen_counters(proc),
        locks=tuple(lock for lock in procfs.read_locks(proc) if lock.pid in pids),
    )


def _descendants(root_pid: int, proc: Path) -> frozenset[int]:
    found = {root_pid}
    frontier = [root_pid]
    while frontier:
        for child in procfs.read_children(frontier.pop(), proc):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return frozenset(found)


def _listeners(
    rows: tuple[TcpRow, ...],
    scan: _FdScan,
    tree: frozenset[int],
    root_pid: int | None,
    port: int | None,
) -> tuple[ListeningSocket, ...]:
    listening = [r for r in rows if r.state == TcpState.LISTEN]
    if port is not None:
        listening = [r for r in listening if r.local.port == port]
    if root_pid is not None:
        in_tree = {inode for pid in tree for inode in scan.sockets(pid).values()}
        listening = [r for r in listening if r.inode in in_tree]
    found = tuple(sorted(ListeningSocket(r.local, r.inode, r.rx_queue) for r in listening))
    _check_found(found, scan, root_pid, port)
    return found


def _check_found(
    found: tuple[ListeningSocket, ...], scan: _FdScan, root_pid: int | None, port: int | None
) -> None:
    where = f"port {port}" if port is not None else "any port"
    if root_pid is not None and not found:
        raise NothingListensError(
            f"process {root_pid} and its descendants hold no listening socket on {where}: "
            "pass the server's master pid, or --port"
        )
    if port is None or root_pid is not None:
        return
    if not found:
        raise NothingListensError(
            f"nothing listens on TCP port {port} in this network namespace: start the server, "
            "check the port (ss -ltn), or pass --pid"
        )
    if not scan.holders_of(s.inode for s in found):
        raise ProcAccessDeniedError(
            f"a socket listens on port {port} but no process whose fds we may read holds it: "
            f"run as the server's user or as root ({len(scan.denied)} fd tables were denied)"
        )


def _members(
    rows: tuple[TcpRow, ...],
    scan: _FdScan,
    tree: frozenset[int],
    listeners: tuple[ListeningSocket, ...],
    add_children: bool,
    proc: Path,
) -> frozenset[int]:
    listener_holders = scan.holders_of(s.inode for s in listeners)
    members = set(tree) | listener_holders | scan.holders_of(_accepted_inodes(rows, listeners))
    if add_children:
        for pid in listener_holders - {1}:
            members.update(procfs.read_children(pid, proc))
        members.update(_common_parents(listener_holders, proc))
    return frozenset(members)


def _common_parents(holders: frozenset[int], proc: Path) -> set[int]:
    """Parents (other than pid 1) of at least two holders: a master whose workers each bound a
    private socket holds none itself (gunicorn --reuse-port, G3), yet it is the server."""
    stats = (procfs.read_stat(pid, proc) for pid in holders)
    parents = [stat.ppid for stat in stats if stat is not None and stat.ppid > 1]
    return {ppid for ppid in parents if parents.count(ppid) > 1}


def _is_server_side(row: TcpRow, listeners: tuple[ListeningSocket, ...]) -> bool:
    """True for a connection row that arrived on one of the listeners' addresses (a wildcard
    listener matches any local address with its port)."""
    if row.state == TcpState.LISTEN:
        return False
    return any(
        row.local.port == s.address.port and s.address.host in (row.local.host, "0.0.0.0", "::")
        for s in listeners
    )


def _accepted_inodes(rows: tuple[TcpRow, ...], listeners: tuple[ListeningSocket, ...]) -> set[int]:
    return {r.inode for r in rows if r.inode != 0 and _is_server_side(r, listeners)}


def _queued(
    rows: tuple[TcpRow, ...], listeners: tuple[ListeningSocket, ...]
) -> tuple[QueuedConnection, ...]:
    return tuple(
        sorted(
            QueuedConnection(r.local, r.remote, r.state)
            for r in rows
            if r.inode == 0 and r.state in _QUEUED_STATES and _is_server_side(r, listeners)
        )
    )


def _views(
    members: frozenset[int],
    scan: _FdScan,
    listeners: tuple[ListeningSocket, ...],
    rows: tuple[TcpRow, ...],
    proc: Path,
) -> list[ProcessView]:
    inodes = frozenset(s.inode for s in listeners)
    accepted = _accepted_inodes(rows, listeners)
    views = (_view(pid, scan, inodes, accepted, proc) for pid in sorted(members))
    return [view for view in views if view is not None]


def _view(
    pid: int, scan: _FdScan, listeners: frozenset[int], accepted: set[int], proc: Path
) -> ProcessView | None:
    """One process's view, or None when it exited while being read (or was unreadable)."""
    stat = procfs.read_stat(pid, proc)
    cmdline = procfs.read_cmdline(pid, proc)
    switches = procfs.read_context_switches(pid, proc)
    wchan = procfs.read_wchan(pid, proc)
    if stat is None or cmdline is None or switches is None or wchan is None:
        return None
    sockets = scan.sockets(pid)
    return ProcessView(
        pid=pid,
        ppid=stat.ppid,
        role=Role.WORKER,  # provisional: _assign_roles needs every member's ppid first
        state=stat.state,
        name=stat.comm,
        cmdline=" ".join(cmdline),
        listener_fds=_listener_fds(pid, sockets, listeners, proc),
        registrations=_registrations(pid, scan.links.get(pid, {}), sockets, listeners, proc),
        connections=tuple(sorted(set(sockets.values()) & accepted)),
        voluntary_switches=switches[0],
        nonvoluntary_switches=switches[1],
        wchan=wchan,
    )


def _listener_fds(
    pid: int, sockets: Mapping[int, int], listeners: frozenset[int], proc: Path
) -> tuple[ListenerFd, ...]:
    fds: list[ListenerFd] = []
    for fd, inode in sorted(sockets.items()):
        if inode not in listeners:
            continue
        info = procfs.read_fdinfo(pid, fd, proc)
        if info is not None:
            fds.append(ListenerFd(fd, inode, info.is_cloexec, info.is_nonblocking))
    return tuple(fds)


def _registrations(
    pid: int,
    links: Mapping[int, str],
    sockets: Mapping[int, int],
    listeners: frozenset[int],
    proc: Path,
) -> tuple[EpollRegistration, ...]:
    found: list[EpollRegistration] = []
    for epfd in sorted(fd for fd, link in links.items() if procfs.is_eventpoll(link)):
        info = procfs.read_fdinfo(pid, epfd, proc)
        for entry in info.epoll if info is not None else ():
            # The tfd line's ino (kernels >= 3.8) names the file even if tfd was closed since;
            # older kernels print only tfd, which we resolve through the fd table.
            inode = entry.target_inode if entry.target_inode is not None else sockets.get(entry.tfd)
            if inode in listeners:
                found.append(EpollRegistration(epfd, entry.tfd, inode, entry.events))
    return tuple(found)


def _assign_roles(
    views: list[ProcessView], root_pid: int | None, reapers: frozenset[int]
) -> tuple[ProcessView, ...]:
    pids = {view.pid for view in views}
    parents = {view.ppid for view in views}
    return tuple(_with_role(view, pids, parents, root_pid, reapers) for view in views)


def _with_role(
    view: ProcessView,
    pids: set[int],
    parents: set[int],
    root_pid: int | None,
    reapers: frozenset[int],
) -> ProcessView:
    if view.pid in parents or view.pid == root_pid:
        role = Role.MASTER
    elif view.ppid in pids:
        role = Role.WORKER
    elif view.ppid in reapers:
        role = Role.ORPHAN  # N3: the master died and the kernel reparented its worker
    else:
        role = Role.MASTER  # a master without workers (or a single-process server)
    return replace(view, role=role)


# ---------------------------------------------------------------- who accepted a connection


def connection_holders(
    client: Endpoint, server_port: int | None = None, *, proc: Path = PROC
) -> tuple[int, ...]:
    """Pids holding the server side of ``client``'s connection, ascending.

    The server-side row is the one whose remote address is the client's ``getsockname()``
    (DOMAIN §8). Empty while the connection is queued (inode 0, K12), after it closed, or when
    nothing matches.

    Args:
        client: the client socket's own address (``Endpoint(*sock.getsockname()[:2])``).
        server_port: restrict to rows on this local port (recommended: the same client port can
            appear in rows to different servers).
        proc: the procfs mount, for tests.
    """
    inodes = {
        row.inode
        for row in procfs.read_tcp_table(None, proc)
        if row.remote == client
        and row.inode != 0
        and row.state != TcpState.LISTEN
        and (server_port is None or row.local.port == server_port)
    }
    if not inodes:
        return ()
    return tuple(sorted(_scan_fd_tables(proc).holders_of(inodes)))


def who_accepted(
    client_port: int,
    *,
    server_port: int | None = None,
    client_host: str = "127.0.0.1",
    proc: Path = PROC,
) -> int | None:
    """The pid that accepted the connection from ``client_host:client_port``, or None while it is
    queued, after it closed, or when nothing matches.

    When several processes hold it (a passfd master before the worker's ack, J1; or an acceptor
    that forked), a holder whose child also holds it is the passer, not the acceptor: the answer
    is the holder none of whose children hold it (the lowest such pid).
    """
    holders = connection_holders(Endpoint(client_host, client_port), server_port, proc=proc)
    if len(holders) <= 1:
        return holders[0] if holders else None
    stats = (procfs.read_stat(pid, proc) for pid in holders)
    parents = {stat.ppid for stat in stats if stat is not None}
    leaves = [pid for pid in holders if pid not in parents]
    return (leaves or list(holders))[0]
