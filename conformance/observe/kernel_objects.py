"""The kernel objects behind a shared listening socket, as one frozen graph: the picture's model.

"How do the workers share the master's socket?" has a four-part answer, one kernel object behind
the other (K1, K2, K11):

    descriptor (per process: a number, and FD_CLOEXEC)
      → open file description (one object, shared by every descriptor copied by fork, dup or
        SCM_RIGHTS; its reference count, its status flags such as O_NONBLOCK)
        → socket (state LISTEN, address, options SO_REUSEADDR, SO_REUSEPORT, TCP_DEFER_ACCEPT)
          → accept queue (its length now and its maximum)

:func:`kernel_objects` builds that graph, :class:`KernelObjects`, from a
:class:`~forkshare.conformance.observe.observer.ServerSnapshot`, reading what /proc does not show
through :mod:`~forkshare.conformance.observe.socket_probe`. A shared mode (exclusive, with three
workers) reads "4 descriptors → 1 open file description → 1 socket → 1 accept queue"; reuseport
reads one socket and one queue per slot; passfd only the master's descriptor.
:mod:`~forkshare.conformance.observe.kernel_picture` draws it as text and as graphviz DOT.

Discussion:
    *Which descriptors share an open file description.* /proc gives no identifier for an open
    file description. ``kcmp(KCMP_FILE)`` compares two descriptors' ``struct file`` pointers, so
    the grouping is measured where the kernel lets us (``compared`` is then True). Where it does
    not, descriptors on one socket inode are put in one description: a socket has exactly one
    (``sock_alloc_file`` creates it with the socket, and nothing can open a socket a second time;
    ``open("/proc/PID/fd/N")`` on a socket fails with ENXIO), so the inference is sound for
    sockets, and it is labelled as inferred.

    *The reference count* is the number of descriptors seen, over every process of the server.
    The kernel's ``f_count`` can be higher for a moment (a descriptor in flight in an
    ``SCM_RIGHTS`` message, a syscall in progress, our own borrowed copy while we probe), never
    lower.

    *Status flags* come from ``flags:`` in ``/proc/PID/fdinfo/N`` with ``O_CLOEXEC`` removed:
    the kernel prints that bit from the descriptor table, not from the open file description
    (K2, E5), so it is drawn on the descriptor instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from forkshare.conformance.observe import procfs, socket_probe
from forkshare.conformance.observe.observer import ListeningSocket, ProcessView, ServerSnapshot
from forkshare.conformance.observe.procfs import O_CLOEXEC, O_NONBLOCK, Endpoint
from forkshare.conformance.observe.role import Role

_O_RDWR = 0o2


@dataclass(frozen=True, slots=True, order=True)
class ProcessNode:
    """A process of the server, whether or not it holds a listening socket.

    Attributes:
        pid: the process id.
        role: master, worker or orphan, as the observer assigned it.
        name: its ``comm``.
    """

    pid: int
    role: Role
    name: str


@dataclass(frozen=True, slots=True, order=True)
class Descriptor:
    """One descriptor: a number in one process's table, pointing at an open file description.

    Attributes:
        pid: the process whose table it is in.
        fd: its number there.
        description: the key of the :class:`OpenFileDescription` it refers to.
        cloexec: FD_CLOEXEC, a flag of this descriptor alone (K2).
        epoll_events: the event masks of this descriptor's registrations in the process's epoll
            instances (EPOLLEXCLUSIVE is bit 0x10000000, K5), empty when not registered.
    """

    pid: int
    fd: int
    description: int
    cloexec: bool
    epoll_events: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class OpenFileDescription:
    """The kernel's record of one opening of a socket, shared by every descriptor copied from it.

    Attributes:
        key: its number in the picture (1, 2, …): the kernel gives it none.
        socket: the inode of the socket it refers to.
        reference_count: how many descriptors, over every process, refer to it (K1).
        status_flags: its file status flags, the ``flags:`` of fdinfo without O_CLOEXEC.
        compared: ``kcmp`` confirmed that its descriptors share it; False when that was refused
            and the grouping was inferred from the socket (module Discussion).
    """

    key: int
    socket: int
    reference_count: int
    status_flags: int
    compared: bool

    @property
    def nonblocking(self) -> bool:
        """O_NONBLOCK: set by one holder, it is set for every holder."""
        return bool(self.status_flags & O_NONBLOCK)


@dataclass(frozen=True, slots=True)
class SocketNode:
    """A listening socket and its options, read through a borrowed descriptor.

    Attributes:
        inode: ``socket:[inode]`` in every holder's fd table.
        address: the address it is bound to.
        state: its TCP state, ``LISTEN`` (from /proc/net/tcp).
        reuseaddr: SO_REUSEADDR, None when unknown.
        reuseport: SO_REUSEPORT, None when unknown.
        defer_accept: TCP_DEFER_ACCEPT in seconds (0: off), None when unknown.
        unknown_because: why the options could not be read, None when they were.
    """

    inode: int
    address: Endpoint
    state: str
    reuseaddr: bool | None
    reuseport: bool | None
    defer_accept: int | None
    unknown_because: str | None


@dataclass(frozen=True, slots=True)
class AcceptQueue:
    """A listening socket's queue of connections that completed their handshake (K11, K12).

    Attributes:
        socket: the inode of the socket it belongs to.
        length: connections waiting for ``accept()`` now (``rx_queue``, K11).
        max_backlog: the most it holds before SYNs are dropped, ``tcpi_sacked`` (E6; the queue is
            full at backlog + 1, K13), None when unknown.
    """

    socket: int
    length: int
    max_backlog: int | None


@dataclass(frozen=True, slots=True)
class KernelObjects:
    """The whole graph: processes → descriptors → open file descriptions → sockets → queues.

    Attributes:
        processes: every process of the server, by pid.
        descriptors: every descriptor on a listening socket, by pid then fd.
        descriptions: the open file descriptions, by key.
        sockets: the listening sockets, in the snapshot's order (address, then inode).
        queues: one accept queue per socket, in the same order.
    """

    processes: tuple[ProcessNode, ...]
    descriptors: tuple[Descriptor, ...]
    descriptions: tuple[OpenFileDescription, ...]
    sockets: tuple[SocketNode, ...]
    queues: tuple[AcceptQueue, ...]

    def descriptors_of(self, key: int) -> tuple[Descriptor, ...]:
        """The descriptors that refer to open file description ``key``."""
        return tuple(d for d in self.descriptors if d.description == key)

    def descriptions_of(self, inode: int) -> tuple[OpenFileDescription, ...]:
        """The open file descriptions of socket ``inode`` (one, for a socket)."""
        return tuple(d for d in self.descriptions if d.socket == inode)

    def queue_of(self, inode: int) -> AcceptQueue:
        """The accept queue of socket ``inode``."""
        return next(q for q in self.queues if q.socket == inode)

    def process(self, pid: int) -> ProcessNode:
        """The process ``pid`` (one of :attr:`processes`)."""
        return next(p for p in self.processes if p.pid == pid)


def kernel_objects(snap: ServerSnapshot) -> KernelObjects:
    """Build the graph of ``snap``'s listening sockets, reading their options and comparing their
    descriptors through :mod:`~forkshare.conformance.observe.socket_probe` (module Discussion).

    Processes that exited since the snapshot keep their descriptors in the graph as the snapshot
    saw them; their options and comparisons read as unknown.
    """
    views = {p.pid: p for p in snap.processes}
    descriptors: list[Descriptor] = []
    descriptions: list[OpenFileDescription] = []
    sockets: list[SocketNode] = []
    queues: list[AcceptQueue] = []
    for listener in snap.listeners:
        holders = _holders(snap.processes, listener.inode)
        for group in _group_by_description(holders):
            key = len(descriptions) + 1
            count, flags = len(group.members), _status_flags(group.members)
            descriptions.append(
                OpenFileDescription(key, listener.inode, count, flags, group.compared)
            )
            descriptors += [_descriptor(views[pid], fd, key) for pid, fd in group.members]
        reading = _read_options(holders)
        sockets.append(_socket_node(listener, reading))
        queues.append(AcceptQueue(listener.inode, listener.rx_queue, reading.max_backlog))
    return KernelObjects(
        processes=tuple(ProcessNode(p.pid, p.role, p.name) for p in snap.processes),
        descriptors=tuple(sorted(descriptors)),
        descriptions=tuple(descriptions),
        sockets=tuple(sockets),
        queues=tuple(queues),
    )


Holder = tuple[int, int]
"""A descriptor by (pid, fd)."""


@dataclass(slots=True)
class _Group:
    """Descriptors found to share one open file description, while they are being grouped."""

    members: list[Holder]
    compared: bool = True


def _holders(processes: Iterable[ProcessView], inode: int) -> list[Holder]:
    """Every (pid, fd) on socket ``inode``, the master's first (the usual creator)."""
    ordered = sorted(processes, key=lambda p: (p.role != Role.MASTER, p.pid))
    return [(p.pid, fd) for p in ordered for fd in p.fds_on(inode)]


def _group_by_description(holders: list[Holder]) -> list[_Group]:
    """Split the holders of one socket into open file descriptions with ``kcmp``; a holder the
    kernel will not compare joins the first group (one socket, one description), which then
    counts as inferred."""
    groups: list[_Group] = []
    for holder in holders:
        for group in groups:
            same = socket_probe.same_open_file(group.members[0], holder)
            if same is not False:
                group.members.append(holder)
                group.compared = group.compared and same is True
                break
        else:
            groups.append(_Group([holder]))
    return groups


def _status_flags(group: list[Holder]) -> int:
    """The open file description's status flags from the first holder's fdinfo that can be read
    (O_CLOEXEC removed: it is the descriptor's, K2); O_RDWR when none can."""
    for pid, fd in group:
        info = procfs.read_fdinfo(pid, fd)
        if info is not None:
            return info.flags & ~O_CLOEXEC
    return _O_RDWR


def _descriptor(view: ProcessView, fd: int, key: int) -> Descriptor:
    cloexec = any(f.cloexec for f in view.listener_fds if f.fd == fd)
    events = tuple(r.events for r in view.registrations if r.target_fd == fd)
    return Descriptor(view.pid, fd, key, cloexec, events)


def _read_options(holders: list[Holder]) -> socket_probe.SocketReading:
    """The socket's options through the first holder whose descriptor can be borrowed."""
    reading = socket_probe.SocketReading(unknown_because="no process holds it")
    for pid, fd in holders:
        reading = socket_probe.read_socket(pid, fd)
        if reading.unknown_because is None:
            break
    return reading


def _socket_node(listener: ListeningSocket, reading: socket_probe.SocketReading) -> SocketNode:
    return SocketNode(
        inode=listener.inode,
        address=listener.address,
        state="LISTEN",
        reuseaddr=reading.reuseaddr,
        reuseport=reading.reuseport,
        defer_accept=reading.defer_accept,
        unknown_because=reading.unknown_because,
    )
