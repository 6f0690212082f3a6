"""The listening sockets: created by the master before any fork, inherited, reconciled on reload.

The master owns every listening socket for its whole life (nginx, gunicorn's default mode): a
worker's death closes only that worker's descriptor, never the socket or its accept queue (K1). In
``reuseport`` mode the master opens one SO_REUSEPORT socket per worker slot and keeps them all
(nginx's ``ngx_clone_listening``), so a respawned worker takes over the same socket and its queue.

Sockets also arrive from outside: from systemd (``LISTEN_PID``/``LISTEN_FDS``, descriptors from 3,
sd_listen_fds(3)) and from a previous master during a binary upgrade (``FORKSHARE_FDS=fd;fd;...``,
nginx's ``NGINX=`` variable, K18). Every descriptor is close-on-exec except in the short-lived child
that execs the new master, where :func:`upgrade_environment` clears the flag on the listeners only.

Discussion:
    *Inherited reuseport sockets and slots.* The upgrade variable lists the descriptors in slot
    order, so the n-th inherited socket of an address becomes slot n. A systemd unit cannot say
    which slot a socket is for, so the same rule applies.

    *Fewer reuseport slots after a reload.* Closing a clone resets the connections queued on it
    unless ``net.ipv4.tcp_migrate_req=1`` (K8, K9; nginx commit ``f7f1607bf``). Keeping a clone
    that no worker accepts from strands them instead (nginx trac #2403). We close, as nginx does,
    and log the sysctl's value.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from forkshare.impl.errors import ServeError, SyscallError
from forkshare.impl.options import Address, Mode
from forkshare.impl.trace import Trace

log = logging.getLogger("forkshare.impl")

ListenerKey = tuple[Address, int | None]
"""What identifies a listening socket across a reload: its address and its reuseport slot."""

UPGRADE_VARIABLE: Final = "FORKSHARE_FDS"
SYSTEMD_FIRST_FD: Final = 3  # SD_LISTEN_FDS_START
# A worker blocked in accept() in blocking mode wakes at least this often (SO_RCVTIMEO), so that
# a recorded signal is handled without the handler having to raise out of accept().
BLOCKING_ACCEPT_TIMEOUT: Final = 0.5


@dataclass(slots=True, eq=False)
class Listener:
    """One listening socket held by this process: its address, reuseport slot and inode."""

    sock: socket.socket
    address: Address
    slot: int | None
    reuseport: bool
    inode: int = field(init=False)

    def __post_init__(self) -> None:
        self.inode = os.fstat(self.sock.fileno()).st_ino

    @property
    def fd(self) -> int:
        """The descriptor number (the same in every forked child)."""
        return self.sock.fileno()

    @property
    def key(self) -> ListenerKey:
        """What a reload matches on: the address and the reuseport slot."""
        return (self.address, self.slot)

    def close(self) -> None:
        """Close this process's descriptor; the socket lives on in other holders (K1)."""
        self.sock.close()


def wanted_keys(addresses: Sequence[Address], reuseport: bool, slots: int) -> list[ListenerKey]:
    """The (address, slot) pairs a configuration needs, in slot order."""
    if not reuseport:
        return [(address, None) for address in addresses]
    return [(address, slot) for address in addresses for slot in range(slots)]


def open_listener(address: Address, backlog: int, slot: int | None) -> Listener:
    """socket, SO_REUSEADDR, SO_REUSEPORT (slot given), bind, listen (nginx's function
    ``ngx_open_listening_sockets``).

    Raises:
        SyscallError: named after the failing call, e.g. ``bind(127.0.0.1:80) failed: ...``.
    """
    target = str(address)
    try:
        # Python creates sockets close-on-exec (PEP 446); only the upgrade child clears it.
        sock = socket.socket(address.family, socket.SOCK_STREAM)
    except OSError as error:
        raise SyscallError("socket", target, error) from error
    try:
        _bind_and_listen(sock, address, backlog, reuseport=slot is not None)
    except BaseException:
        sock.close()
        raise
    return Listener(sock, address, slot, slot is not None)


def _bind_and_listen(sock: socket.socket, address: Address, backlog: int, reuseport: bool) -> None:
    target = str(address)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            # Must be set on every member before bind(), all with the same euid (K7).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if address.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    except OSError as error:
        raise SyscallError("setsockopt", target, error) from error
    try:
        sock.bind(address.sockaddr)
    except OSError as error:
        raise SyscallError("bind", target, error, _bind_hint(error)) from error
    try:
        sock.listen(backlog)
    except OSError as error:
        raise SyscallError("listen", target, error) from error


def _bind_hint(error: OSError) -> str:
    if error.errno == 98:  # EADDRINUSE
        return "another process listens there: stop it or choose another --listen port"
    if error.errno == 13:  # EACCES
        return "ports below 1024 need root or CAP_NET_BIND_SERVICE"
    if error.errno == 99:  # EADDRNOTAVAIL
        return "no local interface has this address"
    return ""


def set_mode_flags(listeners: Iterable[Listener], mode: Mode) -> None:
    """Make the sockets blocking (blocking mode) or non-blocking (every other mode).

    O_NONBLOCK belongs to the open file description, so this changes it for every holder: the
    master sets it once, before forking, for the mode the whole server runs in.
    """
    blocking = mode == "blocking"
    seconds, fraction = divmod(BLOCKING_ACCEPT_TIMEOUT, 1)
    timeout = struct.pack("ll", int(seconds), int(fraction * 1e6))
    for listener in listeners:
        os.set_blocking(listener.fd, blocking)
        if blocking:
            listener.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeout)


def inherited_listeners(environ: Mapping[str, str]) -> tuple[list[Listener], str]:
    """The sockets handed over by a previous master or by systemd, and which of the two it was.

    The variables are removed from ``os.environ`` so that no child sees them again.

    Raises:
        ServeError: a listed descriptor is not a listening TCP socket.
    """
    if UPGRADE_VARIABLE in environ:
        text = os.environ.pop(UPGRADE_VARIABLE, "")
        fds = [int(part) for part in text.split(";") if part.strip()]
        return _adopt(fds), "upgrade"
    if environ.get("LISTEN_PID") == str(os.getpid()) and "LISTEN_FDS" in environ:
        count = int(os.environ.pop("LISTEN_FDS"))
        os.environ.pop("LISTEN_PID", None)
        os.environ.pop("LISTEN_FDNAMES", None)
        return _adopt(range(SYSTEMD_FIRST_FD, SYSTEMD_FIRST_FD + count)), "systemd"
    return [], ""


def _adopt(fds: Iterable[int]) -> list[Listener]:
    adopted: list[Listener] = []
    slots: dict[Address, int] = {}
    for fd in fds:
        try:
            sock = socket.socket(fileno=fd)
            os.set_inheritable(fd, False)
        except OSError as error:
            raise ServeError(
                f"inherited descriptor {fd} is not a socket: {error.strerror}"
            ) from None
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) != 1:
            raise ServeError(f"inherited descriptor {fd} is not a listening socket")
        host, port = sock.getsockname()[:2]
        address = Address(host, port, socket.AddressFamily(sock.family))
        reuseport = sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        slot = slots.get(address, 0)
        slots[address] = slot + 1
        adopted.append(Listener(sock, address, slot if reuseport else None, reuseport))
    return adopted


@dataclass(slots=True)
class Reconciled:
    """The outcome of matching held listeners against a configuration."""

    keep: list[Listener]
    opened: list[Listener]
    close: list[Listener]

    @property
    def listeners(self) -> list[Listener]:
        """Every listener of the new configuration, kept ones first."""
        return [*self.keep, *self.opened]


def reconcile(held: Sequence[Listener], wanted: Sequence[ListenerKey], backlog: int) -> Reconciled:
    """Keep held sockets that match a wanted (address, slot), open the missing ones.

    Like ``ngx_init_cycle``: a kept socket keeps its queue; nothing is closed here (the caller
    closes ``close`` once the new generation runs). A held non-reuseport socket matches slot 0 of a
    reuseport configuration after SO_REUSEPORT is set on it (nginx's ``add_reuseport``).

    Raises:
        SyscallError: opening a new socket failed; every socket opened by this call is closed.
    """
    free = list(held)
    result = Reconciled([], [], [])
    try:
        for address, slot in wanted:
            match = _take_match(free, address, slot)
            if match is not None:
                match.sock.listen(backlog)  # a changed backlog takes effect (nginx re-listen)
                result.keep.append(match)
            else:
                result.opened.append(open_listener(address, backlog, slot))
    except BaseException:
        for listener in result.opened:
            listener.close()
        raise
    result.close = free
    return result


def _take_match(free: list[Listener], address: Address, slot: int | None) -> Listener | None:
    for listener in free:
        if listener.address == address and listener.slot == slot:
            free.remove(listener)
            return listener
    if slot == 0:
        for listener in free:
            if listener.address == address and listener.slot is None:
                listener.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                free.remove(listener)
                listener.slot, listener.reuseport = 0, True
                return listener
    if slot is None:
        for listener in free:
            if listener.address == address:
                free.remove(listener)
                listener.slot = None
                return listener
    return None


def trace_listeners(trace: Trace, listeners: Iterable[Listener], event: str) -> None:
    """Emit ``listen`` or ``inherit`` for each listener (the trace format the verifier reads)."""
    for listener in listeners:
        trace.emit(
            event,
            fd=listener.fd,
            inode=listener.inode,
            address=str(listener.address),
            reuseport=listener.reuseport,
            slot=listener.slot,
        )


def upgrade_environment(listeners: Sequence[Listener]) -> dict[str, str]:
    """In the child about to exec the new master: clear CLOEXEC on the listeners, name them.

    Only this child's descriptor table changes (K2), so the old master's copies stay close-on-exec.
    """
    for listener in listeners:
        os.set_inheritable(listener.fd, True)
    ordered = sorted(listeners, key=lambda item: (str(item.address), item.slot or 0))
    return {UPGRADE_VARIABLE: ";".join(str(listener.fd) for listener in ordered)}


def migrate_req_enabled() -> bool:
    """Whether ``net.ipv4.tcp_migrate_req`` moves a closed reuseport socket's queue (K9)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_migrate_req") as file:
            return file.read().strip() == "1"
    except OSError:
        return False
