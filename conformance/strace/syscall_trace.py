"""What a server's system calls say about its socket sharing: roles, listening sockets, rules.

:func:`analyze` takes the events of :mod:`forkshare.conformance.strace.strace_log` and reconstructs

* the process tree (``clone``/``clone3``/``fork``/``vfork`` results; ``CLONE_THREAD`` children
  are threads of their caller, not processes);
* each process's role: ``launcher`` (a wrapper or a daemonising parent on the way to the master),
  ``master``, ``worker`` (a child of the master still alive when the first socket listened) and
  ``helper`` (anything else, e.g. a shell's short-lived children);
* each process's table of internet sockets by fd: created by ``socket``, inherited at fork (K1),
  copied by ``dup2``/``dup3``, bound, listening, closed;

and checks the model's rules on it (DOMAIN §1.1, §2.2, ARCHITECTURE "Sharing modes"):

``master_listens_before_fork``
    every listening socket is created, bound and put into listen by the master (or a launcher
    before it) before the master forks its first worker, so every worker inherits it.
``workers_never_bind``
    no worker calls ``bind`` on an internet socket or ``listen`` (gunicorn ``--reuse-port`` does:
    B10, G3).

Discussion:
    *Finding the master.* The traced command is not always the master: ``sh -c``, pyenv shims or
    ``env`` wrap it, and a daemonising server (nginx ``daemon on``) binds in the first process,
    forks once, and lets the child become the master. We walk down from the first process while
    it has exactly one candidate child and either never touched an internet socket (a wrapper) or
    exited while that child lived on (a daemoniser). A one-worker server whose master makes no
    socket call at all (gunicorn ``--reuse-port -w 1``) is then mistaken for a wrapper; its
    worker is reported as the master. We accept that: one worker shares nothing.

    *The fd tables are reconstructed, not observed*: strace shows each call's fd numbers, and we
    replay fork (copy the parent's table at the child's first event), dup2/dup3 and close. fds
    passed with SCM_RIGHTS (``recvmsg`` is not traced) are unknown and shown as such.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from forkshare.conformance.observe.role import Role
from forkshare.conformance.strace.strace_log import ProcessExit, StraceEvent, Syscall

_FORK_CALLS = frozenset({"clone", "clone3", "fork", "vfork"})
_INET_FAMILY = re.compile(r"\bAF_INET6?\b")
_SOCKET_ARGS = re.compile(r"(?P<family>AF_\w+),\s*(?P<type>[\w|]+)")
_FIRST_FD = re.compile(r"\s*(?P<fd>\d+)")
_DUP_ARGS = re.compile(r"\s*(?P<old>\d+),\s*(?P<new>\d+)")
_PORT = re.compile(r"sin6?_port=htons\((?P<port>\d+)\)")
_ADDR = re.compile(
    r'(?:sin_addr=inet_addr\("(?P<v4>[^"]+)"\)|inet_pton\(AF_INET6, "(?P<v6>[^"]+)")'
)
_EPOLL_ARGS = re.compile(r"\s*(?P<epfd>\d+),\s*(?P<op>EPOLL_CTL_\w+),\s*(?P<fd>\d+)")
_EXECVE_PATH = re.compile(r'\s*"(?P<path>[^"]*)"')
_INTERESTING_PRCTL = ("PR_SET_PDEATHSIG", "PR_SET_CHILD_SUBREAPER")


@dataclass(frozen=True, slots=True)
class SocketState:
    """An internet socket in one process's fd table, as the trace reconstructs it.

    Attributes:
        created_by: pid of the process whose ``socket()`` call created it.
        family: ``AF_INET`` or ``AF_INET6``.
        address: the ``bind`` address (``127.0.0.1:8080``), or None before bind.
        listening: ``listen`` succeeded on it.
    """

    created_by: int
    family: str
    address: str | None = None
    listening: bool = False


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    """One rule checked on the trace: its name, whether it holds, and the evidence."""

    rule: str
    holds: bool
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TracedProcess:
    """One traced process with its role and the calls the report shows.

    Attributes:
        pid: the process id.
        parent: the traced parent's pid, None for the first process.
        role: launcher, master, worker or helper.
        program: the last successful ``execve`` path, or the parent's.
        calls: the socket-sharing calls it made, in order (see :func:`is_shown`).
        accepts: successful ``accept``/``accept4`` calls by listening address.
        failed_accepts: failed ``accept``/``accept4`` calls by errno (EAGAIN: a herd loser, K4).
        exit: how it ended, or None if it still ran when the trace was read.
    """

    pid: int
    parent: int | None
    role: Role
    program: str
    calls: tuple[Syscall, ...]
    accepts: dict[str, int]
    failed_accepts: dict[str, int]
    exit: ProcessExit | None


@dataclass(frozen=True, slots=True)
class TraceAnalysis:
    """The whole trace: processes in order of appearance, listening addresses, rule verdicts."""

    processes: tuple[TracedProcess, ...]
    listening: tuple[str, ...]
    verdicts: tuple[RuleVerdict, ...]

    @property
    def master(self) -> TracedProcess | None:
        """The master process, or None when the trace has no process."""
        return next((p for p in self.processes if p.role == Role.MASTER), None)

    def with_role(self, role: Role) -> tuple[TracedProcess, ...]:
        """The processes with ``role``, in order of appearance."""
        return tuple(p for p in self.processes if p.role == role)

    @property
    def holds(self) -> bool:
        """Every rule holds."""
        return all(v.holds for v in self.verdicts)

    @property
    def accept_count(self) -> int:
        """Successful accepts over all processes."""
        return sum(sum(p.accepts.values()) for p in self.processes)


# ---------------------------------------------------------------- the process tree


@dataclass
class _Tree:
    """Mutable while the events are replayed; frozen into :class:`TracedProcess` at the end."""

    order: list[int] = field(default_factory=list)
    parent: dict[int, int] = field(default_factory=dict)
    thread_of: dict[int, int] = field(default_factory=dict)
    forked_at: dict[int, int] = field(default_factory=dict)  # child → index of the fork call
    exits: dict[int, ProcessExit] = field(default_factory=dict)

    def process_of(self, tid: int) -> int:
        return self.thread_of.get(tid, tid)

    def children(self, pid: int) -> list[int]:
        return [child for child in self.order if self.parent.get(child) == pid]


def _build_tree(events: tuple[StraceEvent, ...]) -> _Tree:
    tree = _Tree()
    for event in events:
        if isinstance(event, Syscall) and event.name in _FORK_CALLS and event.succeeded:
            child = event.result or 0
            if "CLONE_THREAD" in event.args:
                tree.thread_of[child] = tree.process_of(event.pid)
            else:
                tree.parent[child] = tree.process_of(event.pid)
                tree.forked_at[child] = event.index
    for event in events:
        pid = tree.process_of(event.pid)
        if pid not in tree.order:
            tree.order.append(pid)
        if isinstance(event, ProcessExit) and event.pid == pid:
            tree.exits[pid] = event
    return tree


# ---------------------------------------------------------------- the fd tables


@dataclass
class _Tables:
    """Each process's internet sockets by fd, replayed call by call."""

    tree: _Tree
    fds: dict[int, dict[int, SocketState]] = field(default_factory=dict)
    first_listen: int | None = None  # index of the first successful listen()

    def table(self, pid: int) -> dict[int, SocketState]:
        if pid not in self.fds:
            parent = self.tree.parent.get(pid)
            self.fds[pid] = dict(self.fds.get(parent, {})) if parent is not None else {}
        return self.fds[pid]

    def apply(self, call: Syscall) -> SocketState | None:
        """Replay ``call``; return the socket it concerns (for the report), if any."""
        if not call.succeeded:
            return self._socket_of(call) if call.name in ("accept", "accept4") else None
        table = self.table(self.tree.process_of(call.pid))
        handler = getattr(self, f"_on_{call.name}", None)
        return handler(call, table) if handler is not None else self._socket_of(call)

    def _socket_of(self, call: Syscall) -> SocketState | None:
        if call.name == "epoll_ctl":
            return self._on_epoll_ctl(call, self.table(self.tree.process_of(call.pid)))
        return self.table(self.tree.process_of(call.pid)).get(_first_fd(call))

    def _on_socket(self, call: Syscall, table: dict[int, SocketState]) -> SocketState | None:
        match = _SOCKET_ARGS.match(call.args)
        if match is None or not _INET_FAMILY.fullmatch(match["family"]):
            return None
        if "SOCK_STREAM" not in match["type"]:
            return None
        table[call.result or 0] = SocketState(self.tree.process_of(call.pid), match["family"])
        return table[call.result or 0]

    def _on_bind(self, call: Syscall, table: dict[int, SocketState]) -> SocketState | None:
        fd = _first_fd(call)
        if fd not in table:
            return None
        table[fd] = replace(table[fd], address=_address(call.args))
        return table[fd]

    def _on_listen(self, call: Syscall, table: dict[int, SocketState]) -> SocketState | None:
        if self.first_listen is None:
            self.first_listen = call.index
        fd = _first_fd(call)
        if fd not in table:
            return None
        table[fd] = replace(table[fd], listening=True)
        return table[fd]

    def _on_clone(self, call: Syscall, table: dict[int, SocketState]) -> SocketState | None:
        # K1: the child gets a copy of the table as it is at fork time, i.e. now, unless the
        # child's own events came first in the log (then its table was copied at its first event,
        # while the parent was still inside clone, which is the same table).
        if "CLONE_THREAD" not in call.args and call.result:
            self.table(call.result)
        return None

    _on_clone3 = _on_clone
    _on_fork = _on_clone
    _on_vfork = _on_clone

    def _on_epoll_ctl(self, call: Syscall, table: dict[int, SocketState]) -> SocketState | None:
        match = _EPOLL_ARGS.match(call.args)  # epoll_ctl(epfd, op, fd, event): the third
        return table.get(int(match["fd"])) if match else None

    def _on_close(self, call: Syscall, table: dict[int, SocketState]) -> SocketState | None:
        return table.pop(_first_fd(call), None)

    def _on_dup2(self, call: Syscall, table: dict[int, SocketState]) -> SocketState | None:
        match = _DUP_ARGS.match(call.args)
        if match is None:
            return None
        old = table.get(int(match["old"]))
        table.pop(int(match["new"]), None)
        if old is not None:
            table[int(match["new"])] = old
        return old

    _on_dup3 = _on_dup2


def _first_fd(call: Syscall) -> int:
    """The first argument as an fd number, -1 when it is not a number."""
    match = _FIRST_FD.match(call.args)
    return int(match["fd"]) if match else -1


def _address(args: str) -> str | None:
    port = _PORT.search(args)
    host = _ADDR.search(args)
    if port is None:
        return None
    ip = (host["v4"] or f"[{host['v6']}]") if host else "?"
    return f"{ip}:{port['port']}"


# ---------------------------------------------------------------- roles


def _touches_inet(pid: int, events: tuple[StraceEvent, ...], tree: _Tree) -> bool:
    """``pid`` created or bound an internet socket, or listened on any socket."""
    calls = (e for e in events if isinstance(e, Syscall) and tree.process_of(e.pid) == pid)
    return any(
        c.name == "listen" or (c.name in ("socket", "bind") and _INET_FAMILY.search(c.args))
        for c in calls
    )


def _candidates(pid: int, tree: _Tree, first_listen: int | None) -> list[int]:
    """Children of ``pid`` still alive when the first socket listened (not short-lived helpers)."""
    return [
        child
        for child in tree.children(pid)
        if first_listen is None or child not in tree.exits or tree.exits[child].index > first_listen
    ]


def _find_master(events: tuple[StraceEvent, ...], tree: _Tree, first_listen: int | None) -> int:
    pid = tree.order[0]
    while True:
        children = _candidates(pid, tree, first_listen)
        if len(children) != 1:
            return pid
        child = children[0]
        wrapper = not _touches_inet(pid, events, tree)
        daemoniser = pid in tree.exits and (
            child not in tree.exits or tree.exits[child].index > tree.exits[pid].index
        )
        if not (wrapper or daemoniser):
            return pid
        pid = child


def _roles(
    events: tuple[StraceEvent, ...], tree: _Tree, first_listen: int | None
) -> dict[int, Role]:
    if not tree.order:
        return {}
    master = _find_master(events, tree, first_listen)
    roles = dict.fromkeys(tree.order, Role.HELPER)
    ancestor = tree.parent.get(master)
    while ancestor is not None:
        roles[ancestor] = Role.LAUNCHER
        ancestor = tree.parent.get(ancestor)
    roles[master] = Role.MASTER
    for child in _candidates(master, tree, first_listen):
        roles[child] = Role.WORKER
    for pid in tree.order:  # a worker's descendants act for it (e.g. a worker's own fork)
        parent = tree.parent.get(pid)
        if parent is not None and roles.get(parent) == Role.WORKER:
            roles[pid] = Role.WORKER
    return roles


# ---------------------------------------------------------------- analysis


def is_shown(call: Syscall, sock: SocketState | None) -> bool:
    """Whether the report shows ``call``: internet-socket calls, forks, successful execs, epoll
    instances created, epoll registrations and closes of listening sockets, and prctl calls about
    parent death."""
    if call.name in _FORK_CALLS:
        return call.succeeded and "CLONE_THREAD" not in call.args
    if call.name in ("execve", "epoll_create", "epoll_create1"):
        return call.succeeded
    if call.name == "prctl":
        return call.args.startswith(_INTERESTING_PRCTL)
    if call.name in ("accept", "accept4"):
        return False  # summarised per process instead: there can be thousands
    if call.name in ("epoll_ctl", "close", "dup2", "dup3"):
        return sock is not None and sock.listening
    return sock is not None


def analyze(events: Iterable[StraceEvent]) -> TraceAnalysis:
    """Reconstruct roles and sockets from ``events`` and check the rules (module docstring)."""
    ordered = tuple(events)
    tree = _build_tree(ordered)
    tables = _Tables(tree)
    shown: dict[int, list[Syscall]] = {pid: [] for pid in tree.order}
    accepts: dict[int, dict[str, int]] = {pid: {} for pid in tree.order}
    failed: dict[int, dict[str, int]] = {pid: {} for pid in tree.order}
    programs: dict[int, str] = {}
    listening: list[str] = []
    for event in ordered:
        if not isinstance(event, Syscall):
            continue
        pid = tree.process_of(event.pid)
        tables.table(pid)  # inherit the parent's table at the child's first event
        sock = tables.apply(event)
        if event.name == "listen" and sock is not None and (sock.address or "?") not in listening:
            listening.append(sock.address or "?")
        if event.name in ("accept", "accept4"):
            _count_accept(event, sock, accepts[pid], failed[pid])
        if event.name == "execve" and event.succeeded:
            path = _EXECVE_PATH.match(event.args)
            programs[pid] = path["path"] if path else "?"
        if is_shown(event, sock):
            shown[pid].append(event)
    roles = _roles(ordered, tree, tables.first_listen)
    processes = tuple(
        TracedProcess(
            pid=pid,
            parent=tree.parent.get(pid),
            role=roles[pid],
            program=_program(pid, programs, tree),
            calls=tuple(shown[pid]),
            accepts=accepts[pid],
            failed_accepts=failed[pid],
            exit=tree.exits.get(pid),
        )
        for pid in tree.order
    )
    return TraceAnalysis(processes, tuple(listening), _verdicts(processes, tree, tables))


def _count_accept(
    call: Syscall, sock: SocketState | None, ok: dict[str, int], failed: dict[str, int]
) -> None:
    if call.succeeded:
        key = (sock.address if sock is not None else None) or "an unknown socket"
        ok[key] = ok.get(key, 0) + 1
    else:
        failed[call.errno or "?"] = failed.get(call.errno or "?", 0) + 1


def _program(pid: int, programs: dict[int, str], tree: _Tree) -> str:
    while pid not in programs and pid in tree.parent:
        pid = tree.parent[pid]
    return programs.get(pid, "?")


# ---------------------------------------------------------------- rules


def _verdicts(
    processes: tuple[TracedProcess, ...], tree: _Tree, tables: _Tables
) -> tuple[RuleVerdict, ...]:
    return (
        _master_listens_before_fork(processes, tree),
        _workers_never_bind(processes),
    )


def _master_listens_before_fork(processes: tuple[TracedProcess, ...], tree: _Tree) -> RuleVerdict:
    rule = "master_listens_before_fork"
    master = next((p for p in processes if p.role == Role.MASTER), None)
    upstream = {p.pid for p in processes if p.role in (Role.MASTER, Role.LAUNCHER)}
    listens = [c for p in processes if p.pid in upstream for c in p.calls if c.name == "listen"]
    if master is None or not listens:
        return RuleVerdict(rule, False, ("no listen() by the master or a launcher",))
    workers = [p.pid for p in processes if p.role == Role.WORKER and p.parent == master.pid]
    first_fork = min((tree.forked_at[w] for w in workers if w in tree.forked_at), default=None)
    late = [c for c in listens if first_fork is not None and c.index > first_fork]
    if late:
        return RuleVerdict(
            rule,
            False,
            tuple(f"{c.time} pid {c.pid}: {c} after the first worker fork" for c in late),
        )
    return RuleVerdict(
        rule, True, (f"{len(listens)} listen() call(s) before forking {len(workers)} worker(s)",)
    )


def _workers_never_bind(processes: tuple[TracedProcess, ...]) -> RuleVerdict:
    rule = "workers_never_bind"
    offending = [
        f"{c.time} worker {p.pid}: {c}"
        for p in processes
        if p.role == Role.WORKER
        for c in p.calls
        if c.name == "listen" or (c.name == "bind" and _INET_FAMILY.search(c.args))
    ]
    if offending:
        return RuleVerdict(rule, False, tuple(offending))
    workers = sum(p.role == Role.WORKER for p in processes)
    return RuleVerdict(rule, True, (f"none of {workers} worker(s) called bind() or listen()",))
