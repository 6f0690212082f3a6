"""Parsers and readers for the /proc files that show how processes share listening sockets.

This module owns the text formats of DOMAIN.md §8: ``/proc/net/tcp`` and ``tcp6``,
``/proc/PID/{stat,status,cmdline,wchan}``, ``/proc/PID/task/TID/children``, the ``/proc/PID/fd/N``
links and ``/proc/PID/fdinfo/N`` (with epoll's ``tfd:`` lines), ``/proc/net/netstat`` and
``/proc/locks`` (who holds and who waits for a file lock: an flock()/fcntl() accept mutex). It knows
nothing about servers, roles or modes: :mod:`forkshare.conformance.observe.observer` builds on it.

Two layers, kept apart so the parsers can be tested on captured text:

* ``parse_*`` functions are pure: text in, frozen records out. Malformed text raises
  :class:`~forkshare.conformance.observe.errors.ProcFormatError` quoting the line.
* ``read_*`` functions read one file of one process. A process can exit between two reads, so
  every per-process reader returns ``None`` (or skips the entry) when the process or fd is gone
  (``FileNotFoundError``/``ProcessLookupError``) and never crashes. Reading another user's
  ``fd``/``fdinfo`` raises :class:`~forkshare.conformance.observe.errors.ProcAccessDeniedError`.

Discussion:
    *Why not psutil?* psutil gives process trees and connections, but not fdinfo's epoll
    registrations nor the LISTEN rows' ``rx_queue`` (the accept-queue length, K11), and it hides
    the inode-0 queued children (K12) that the model needs. The formats are small and stable, so
    we parse them ourselves and test the parsers on captured samples and on the live kernel.

    *Addresses* are normalised to ``ipaddress`` text; an IPv4-mapped IPv6 address
    (``::ffff:127.0.0.1``, a dual-stack listener's IPv4 client) is shown as the IPv4 address, so a
    client's ``getsockname()`` matches the server-side row whichever table it sits in.

    *Network namespace*: ``/proc/net`` is the reader's namespace. :func:`read_tcp_table` takes an
    optional pid and then reads ``/proc/PID/net/tcp``, the namespace of that process.
"""

from __future__ import annotations

import enum
import functools
import os
import re
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from forkshare.conformance.observe.errors import ProcAccessDeniedError, ProcFormatError

PROC = Path("/proc")

# fcntl(2)/open(2) bits as printed (octal) in the ``flags:`` line of fdinfo (E5, K2).
O_NONBLOCK = 0o4000
O_CLOEXEC = 0o2000000

# epoll_ctl(2) event bits as printed (hex) in an epoll fd's ``tfd:`` lines (E5, N3).
EPOLLIN = 0x1
EPOLLRDHUP = 0x2000
EPOLLEXCLUSIVE = 0x10000000


class TcpState(enum.IntEnum):
    """The ``st`` column of /proc/net/tcp (``include/net/tcp_states.h``)."""

    ESTABLISHED = 0x01
    SYN_SENT = 0x02
    SYN_RECV = 0x03
    FIN_WAIT1 = 0x04
    FIN_WAIT2 = 0x05
    TIME_WAIT = 0x06
    CLOSE = 0x07
    CLOSE_WAIT = 0x08
    LAST_ACK = 0x09
    LISTEN = 0x0A
    CLOSING = 0x0B
    NEW_SYN_RECV = 0x0C


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    """An IP address (normalised text, IPv4-mapped shown as IPv4) and a port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class TcpRow:
    """One row of /proc/net/tcp or tcp6.

    Attributes:
        local: the socket's own address.
        remote: the peer (``0.0.0.0:0`` for a listener).
        state: the TCP state; ``LISTEN`` rows are listening sockets.
        tx_queue: for a LISTEN row always 0 (K11).
        rx_queue: for a LISTEN row the current accept-queue length (K11).
        uid: the owner's uid.
        inode: the socket inode, 0 for a queued child nobody has accepted yet (K12).
    """

    local: Endpoint
    remote: Endpoint
    state: TcpState
    tx_queue: int
    rx_queue: int
    uid: int
    inode: int


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The fields of /proc/PID/stat the observer uses (proc(5) field numbers in comments)."""

    pid: int  # 1
    comm: str  # 2, without the parentheses
    state: str  # 3: R running, S sleeping, D disk, T stopped, t traced, Z zombie, X dead
    ppid: int  # 4
    pgrp: int  # 5
    session: int  # 6
    starttime: int  # 22, clock ticks after boot: tells a reused pid from the original
    startstack: int = 0  # 28, the stack's start address: randomised by each execve (ASLR), so a
    # change under the same pid and starttime means the process re-executed itself (K20); 0 in
    # the instant an exec sets up the new image, and for a reader without ptrace access


@dataclass(frozen=True, slots=True)
class ProcStatus:
    """The fields of /proc/PID/status (or /proc/PID/task/TID/status) the observer uses."""

    name: str
    ppid: int
    euid: int
    threads: int
    voluntary_ctxt_switches: int
    nonvoluntary_ctxt_switches: int
    state: str = "?"
    """The one-letter scheduler state (``S`` sleeping, ``R`` running, ``D``, ``T``, ``Z`` …)."""
    pending: int = 0
    """Signals pending for the process or its thread (``SigPnd | ShdPnd``): bit ``n - 1`` is
    signal ``n``."""

    def has_pending(self, signum: int) -> bool:
        """True while signal ``signum`` waits to be delivered (blocked, or not yet scheduled)."""
        return bool(self.pending & (1 << (signum - 1)))


@dataclass(frozen=True, slots=True)
class EpollEntry:
    """One registration in an epoll instance's interest list (a ``tfd:`` line of its fdinfo).

    Attributes:
        tfd: the registered fd number, in the process that called ``epoll_ctl``.
        events: the requested event mask.
        data: the user data word.
        target_inode: inode of the registered file (``ino:``), or None on kernels before 3.8.
    """

    tfd: int
    events: int
    data: int
    target_inode: int | None

    @property
    def is_exclusive(self) -> bool:
        """Registered with EPOLLEXCLUSIVE (bit 0x10000000, E5): a wake-one waiter (K5)."""
        return bool(self.events & EPOLLEXCLUSIVE)

    @property
    def wants_input(self) -> bool:
        """Registered for EPOLLIN: a listener registered this way is woken by new connections."""
        return bool(self.events & EPOLLIN)


@dataclass(frozen=True, slots=True)
class FdInfo:
    """The parsed /proc/PID/fdinfo/N.

    Attributes:
        flags: the open flags (the ``flags:`` line is octal).
        pos: the file position.
        inode: the ``ino:`` line (kernels 5.14+), or None.
        epoll: the interest list when the fd is an epoll instance, else empty.
    """

    flags: int
    pos: int
    inode: int | None
    epoll: tuple[EpollEntry, ...]

    @property
    def is_cloexec(self) -> bool:
        """FD_CLOEXEC is set on this descriptor (per-descriptor, K2): it will not survive exec."""
        return bool(self.flags & O_CLOEXEC)

    @property
    def is_nonblocking(self) -> bool:
        """O_NONBLOCK is set on the open file description (shared by every holder, K1)."""
        return bool(self.flags & O_NONBLOCK)


@dataclass(frozen=True, slots=True, order=True)
class FileLock:
    """One line of /proc/locks: a lock held on a file, or a process waiting for one (``->``).

    Attributes:
        file: ``MAJOR:MINOR:INODE`` of the locked file (device in hex, inode in decimal).
        pid: the holder or waiter; -1 for an OFD lock, which belongs to an open file description.
        kind: ``FLOCK``, ``POSIX``, ``OFDLCK``, ``LEASE`` …
        access: ``READ`` or ``WRITE`` (``UNLCK`` for a lease being broken).
        waiting: True for a blocked request (the ``->`` lines under the lock they wait for).
    """

    file: str
    pid: int
    kind: str
    access: str
    waiting: bool


@dataclass(frozen=True, slots=True)
class ListenCounters:
    """TcpExt ``ListenOverflows`` and ``ListenDrops`` from /proc/net/netstat (K14): monotonic
    counters for the whole network namespace; compare deltas."""

    overflows: int
    drops: int


# ---------------------------------------------------------------- parsers (pure)


@functools.lru_cache(maxsize=8192)
def decode_address(text: str) -> Endpoint:
    """Decode ``HEXIP:HEXPORT`` from /proc/net/tcp{,6}.

    The address is printed as 32-bit words in host byte order (little-endian on x86 and arm64:
    ``0100007F`` is 127.0.0.1); the port is printed as a plain big number (``1F90`` is 8080).

    Raises:
        ProcFormatError: when the text is not 8 or 32 hex digits, a colon and 4 hex digits.
    """
    address, _, port = text.partition(":")
    if len(address) not in (8, 32) or len(port) != 4:
        raise ProcFormatError(f"not a /proc/net/tcp address: {text!r}")
    try:
        packed = b"".join(
            bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, len(address), 8)
        )
        number = int(port, 16)
    except ValueError:
        raise ProcFormatError(f"not a /proc/net/tcp address: {text!r}") from None
    return Endpoint(_normalise_ip(packed), number)


_V4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"


def _normalise_ip(packed: bytes) -> str:
    if len(packed) == 4:
        return socket.inet_ntop(socket.AF_INET, packed)
    if packed.startswith(_V4_MAPPED_PREFIX):
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    return socket.inet_ntop(socket.AF_INET6, packed)


def parse_tcp_table(text: str, *, skip_time_wait: bool = False) -> tuple[TcpRow, ...]:
    """Parse the whole of /proc/net/tcp or /proc/net/tcp6 (header line first).

    Args:
        text: the file's content.
        skip_time_wait: leave out TIME_WAIT rows (``st`` 06) without decoding them. They belong
            to no process (inode 0) and a busy host has tens of thousands of them.

    Raises:
        ProcFormatError: on a row with too few fields or a non-hex number.
    """
    lines = text.splitlines()[1:]
    if skip_time_wait:
        lines = [line for line in lines if _state_of(line) != "06"]
    return tuple(parse_tcp_row(line) for line in lines if line.strip())


def _state_of(line: str) -> str:
    fields = line.split(None, 4)
    return fields[3] if len(fields) > 3 else ""


def parse_tcp_row(line: str) -> TcpRow:
    """Parse one row: ``sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...``.

    Raises:
        ProcFormatError: on a row with too few fields or a non-hex number.
    """
    fields = line.split()
    if len(fields) < 10:
        raise ProcFormatError(f"short /proc/net/tcp row: {line!r}")
    try:
        tx, _, rx = fields[4].partition(":")
        return TcpRow(
            local=decode_address(fields[1]),
            remote=decode_address(fields[2]),
            state=TcpState(int(fields[3], 16)),
            tx_queue=int(tx, 16),
            rx_queue=int(rx, 16),
            uid=int(fields[7]),
            inode=int(fields[9]),
        )
    except ValueError:
        raise ProcFormatError(f"malformed /proc/net/tcp row: {line!r}") from None


def parse_stat(text: str) -> ProcStat:
    """Parse /proc/PID/stat. ``comm`` may contain spaces and ')' so split after the *last* ')'.

    Raises:
        ProcFormatError: when there is no ``(comm)`` or too few fields after it.
    """
    head, paren, tail = text.rpartition(")")
    pid_text, _, comm = head.partition(" (")
    fields = tail.split()
    if not paren or len(fields) < 20:
        raise ProcFormatError(f"malformed /proc/PID/stat: {text[:120]!r}")
    try:
        return ProcStat(
            pid=int(pid_text),
            comm=comm,
            state=fields[0],
            ppid=int(fields[1]),
            pgrp=int(fields[2]),
            session=int(fields[3]),
            starttime=int(fields[19]),
            startstack=int(fields[25]) if len(fields) > 25 else 0,
        )
    except ValueError:
        raise ProcFormatError(f"malformed /proc/PID/stat: {text[:120]!r}") from None


def parse_status(text: str) -> ProcStatus:
    """Parse /proc/PID/status (``Key:<TAB>value`` lines).

    Raises:
        ProcFormatError: when one of the keys used is missing or not a number.
    """
    values = dict(_status_lines(text))
    try:
        return ProcStatus(
            name=values.get("Name", ""),
            ppid=int(values["PPid"]),
            euid=int(values["Uid"].split()[1]),
            threads=int(values["Threads"]),
            voluntary_ctxt_switches=int(values["voluntary_ctxt_switches"]),
            nonvoluntary_ctxt_switches=int(values["nonvoluntary_ctxt_switches"]),
            state=values.get("State", "?")[:1] or "?",
            pending=int(values.get("SigPnd", "0"), 16) | int(values.get("ShdPnd", "0"), 16),
        )
    except (KeyError, IndexError, ValueError) as error:
        raise ProcFormatError(f"/proc/PID/status lacks a usable {error}") from None


def _status_lines(text: str) -> Iterator[tuple[str, str]]:
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if colon:
            yield key.strip(), value.strip()


def parse_children(text: str) -> tuple[int, ...]:
    """Parse /proc/PID/task/TID/children: space-separated pids (CONFIG_PROC_CHILDREN)."""
    return tuple(int(word) for word in text.split())


def parse_cmdline(raw: bytes) -> tuple[str, ...]:
    """Split /proc/PID/cmdline on NUL. A process that rewrote its title (nginx "nginx: master
    process …", gunicorn with setproctitle) yields one element, NUL padding dropped."""
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0") if part)


_SOCKET_LINK = re.compile(r"socket:\[(\d+)\]")


def socket_inode(link: str) -> int | None:
    """The inode of a ``socket:[N]`` fd link, or None when the fd is not a socket."""
    match = _SOCKET_LINK.fullmatch(link)
    return int(match.group(1)) if match else None


def is_eventpoll(link: str) -> bool:
    """True for the fd link of an epoll instance, ``anon_inode:[eventpoll]``."""
    return link == "anon_inode:[eventpoll]"


_TFD_LINE = re.compile(
    r"tfd:\s*(?P<tfd>\d+)\s+events:\s*(?P<events>[0-9a-fA-F]+)\s+data:\s*(?P<data>[0-9a-fA-F]+)"
    r"(?:\s+pos:\s*\d+)?(?:\s+ino:\s*(?P<ino>[0-9a-fA-F]+))?"
)


def parse_fdinfo(text: str) -> FdInfo:
    """Parse /proc/PID/fdinfo/N, including an epoll instance's ``tfd:`` lines (E5).

    ``flags`` is octal; ``events``, ``data`` and the ``tfd`` line's ``ino`` are hex; the fd's own
    ``ino:`` line is decimal.

    Raises:
        ProcFormatError: when ``flags:`` is missing or a ``tfd:`` line is malformed.
    """
    fields: dict[str, str] = {}
    entries: list[EpollEntry] = []
    for line in text.splitlines():
        if line.startswith("tfd:"):
            entries.append(_parse_tfd_line(line))
        else:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    try:
        return FdInfo(
            flags=int(fields["flags"], 8),
            pos=int(fields.get("pos", "0")),
            inode=int(fields["ino"]) if "ino" in fields else None,
            epoll=tuple(entries),
        )
    except (KeyError, ValueError):
        raise ProcFormatError(f"malformed /proc/PID/fdinfo: {text[:120]!r}") from None


def _parse_tfd_line(line: str) -> EpollEntry:
    match = _TFD_LINE.match(line)
    if match is None:
        raise ProcFormatError(f"malformed epoll fdinfo line: {line!r}")
    ino = match.group("ino")
    return EpollEntry(
        tfd=int(match.group("tfd")),
        events=int(match.group("events"), 16),
        data=int(match.group("data"), 16),
        target_inode=int(ino, 16) if ino is not None else None,
    )


def parse_netstat(text: str) -> dict[str, dict[str, int]]:
    """Parse /proc/net/netstat or /proc/net/snmp: pairs of ``Prefix: names…`` / ``Prefix: values…``.

    Raises:
        ProcFormatError: when a header line has no value line or the counts differ.
    """
    lines = text.splitlines()
    if len(lines) % 2:
        raise ProcFormatError("netstat text has an odd number of lines")
    tables: dict[str, dict[str, int]] = {}
    for header, values in zip(lines[::2], lines[1::2], strict=True):
        prefix, _, names = header.partition(":")
        prefix2, _, numbers = values.partition(":")
        if prefix != prefix2 or len(names.split()) != len(numbers.split()):
            raise ProcFormatError(f"netstat header and values disagree: {header[:60]!r}")
        tables[prefix] = dict(zip(names.split(), map(int, numbers.split()), strict=True))
    return tables


def listen_counters(tables: Mapping[str, Mapping[str, int]]) -> ListenCounters:
    """Pick TcpExt ListenOverflows/ListenDrops out of :func:`parse_netstat`'s result (K14)."""
    tcpext = tables.get("TcpExt", {})
    return ListenCounters(tcpext.get("ListenOverflows", 0), tcpext.get("ListenDrops", 0))


def parse_locks(text: str) -> tuple[FileLock, ...]:
    """Parse /proc/locks: ``ID: [->] KIND MODE ACCESS PID MAJ:MIN:INODE START END`` per line
    (``fs/locks.c`` ``lock_get_status``); a waiter's line carries ``->`` after the id.

    Raises:
        ProcFormatError: on a line with too few fields or a pid that is not a number.
    """
    locks: list[FileLock] = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        waiting = len(fields) > 1 and fields[1] == "->"
        rest = fields[2:] if waiting else fields[1:]
        if len(rest) < 5:
            raise ProcFormatError(f"short /proc/locks line: {line!r}")
        kind, _mode, access, pid, file = rest[:5]
        try:
            locks.append(FileLock(file, int(pid), kind, access, waiting))
        except ValueError:
            raise ProcFormatError(f"malformed /proc/locks line: {line!r}") from None
    return tuple(locks)


def parse_wchan(text: str) -> str:
    """/proc/PID/wchan: the kernel function a sleeping task waits in (DOMAIN §8:
    ``inet_csk_accept``, ``do_epoll_wait``, ``poll_schedule_timeout.constprop.0`` …); "" when
    running (the file says "0")."""
    text = text.strip()
    return "" if text == "0" else text


# ---------------------------------------------------------------- readers (one file each)

_GONE = (FileNotFoundError, ProcessLookupError)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except _GONE:
        return None


def list_pids(root: Path = PROC) -> tuple[int, ...]:
    """Every pid visible in /proc (processes, not threads), ascending."""
    return tuple(sorted(int(name) for name in os.listdir(root) if name.isdigit()))


def read_tcp_table(pid: int | None = None, root: Path = PROC) -> tuple[TcpRow, ...]:
    """Rows of tcp and tcp6 of the reader's network namespace, or of ``pid``'s when given,
    without TIME_WAIT rows (no process holds them; see :func:`parse_tcp_table`). Asked of the
    kernel through netlink when it can (fast, :mod:`~forkshare.conformance.observe.sock_diag`),
    else read from /proc/net/tcp and tcp6.

    Returns an empty tuple when ``pid`` is gone; a missing tcp6 (IPv6 disabled) is skipped.
    """
    if root == PROC and _same_network_namespace(pid):
        from forkshare.conformance.observe.sock_diag import read_tcp_rows

        try:
            return read_tcp_rows()
        except OSError:
            pass  # netlink diag filtered out: read the text tables
    base = root / "net" if pid is None else root / str(pid) / "net"
    rows: list[TcpRow] = []
    for name in ("tcp", "tcp6"):
        text = _read_text(base / name)
        if text is not None:
            rows.extend(parse_tcp_table(text, skip_time_wait=True))
    return tuple(rows)


def _same_network_namespace(pid: int | None) -> bool:
    """True when ``pid`` (None: the reader) shares the reader's network namespace, so a netlink
    dump (:mod:`~forkshare.conformance.observe.sock_diag`) shows its sockets."""
    if pid is None:
        return True
    try:
        return os.readlink(f"/proc/{pid}/ns/net") == os.readlink("/proc/self/ns/net")
    except OSError:
        return False


def read_stat(pid: int, root: Path = PROC) -> ProcStat | None:
    """/proc/PID/stat, or None when the process is gone."""
    text = _read_text(root / str(pid) / "stat")
    return None if text is None else parse_stat(text)


def read_status(pid: int, tid: int | None = None, root: Path = PROC) -> ProcStatus | None:
    """/proc/PID/status (or /proc/PID/task/TID/status), or None when gone."""
    base = root / str(pid) if tid is None else root / str(pid) / "task" / str(tid)
    text = _read_text(base / "status")
    return None if text is None else parse_status(text)


def list_tasks(pid: int, root: Path = PROC) -> tuple[int, ...]:
    """The thread ids of ``pid`` (its tasks), or () when gone."""
    try:
        return tuple(sorted(int(name) for name in os.listdir(root / str(pid) / "task")))
    except _GONE:
        return ()


def read_context_switches(pid: int, root: Path = PROC) -> tuple[int, int] | None:
    """(voluntary, nonvoluntary) context switches summed over every thread of ``pid``, or None
    when gone. /proc/PID/status counts only the main thread, hence the sum (DOMAIN §8)."""
    statuses = [read_status(pid, tid, root) for tid in list_tasks(pid, root)]
    alive = [status for status in statuses if status is not None]
    if not alive:
        return None
    return (
        sum(s.voluntary_ctxt_switches for s in alive),
        sum(s.nonvoluntary_ctxt_switches for s in alive),
    )


def read_children(pid: int, root: Path = PROC) -> tuple[int, ...]:
    """Child pids of every thread of ``pid`` (a child belongs to the thread that forked it)."""
    children: list[int] = []
    for tid in list_tasks(pid, root):
        text = _read_text(root / str(pid) / "task" / str(tid) / "children")
        children.extend(parse_children(text or ""))
    return tuple(sorted(set(children)))


def read_cmdline(pid: int, root: Path = PROC) -> tuple[str, ...] | None:
    """/proc/PID/cmdline split into arguments, or None when gone (a zombie gives ())."""
    try:
        return parse_cmdline((root / str(pid) / "cmdline").read_bytes())
    except _GONE:
        return None


def read_wchan(pid: int, root: Path = PROC) -> str | None:
    """/proc/PID/wchan ("" when running), or None when gone."""
    text = _read_text(root / str(pid) / "wchan")
    return None if text is None else parse_wchan(text)


def read_fd_links(pid: int, root: Path = PROC) -> dict[int, str] | None:
    """Every fd of ``pid`` and its link target (``socket:[N]``, ``anon_inode:[eventpoll]``, a
    path …), or None when gone. An fd closed between listing and reading is skipped.

    Raises:
        ProcAccessDeniedError: when the caller may not read the fd table (other uid, no root).
    """
    directory = root / str(pid) / "fd"
    try:
        names = os.listdir(directory)
    except _GONE:
        return None
    except PermissionError:
        raise _denied(pid, "fd") from None
    links: dict[int, str] = {}
    for name in names:
        try:
            links[int(name)] = os.readlink(directory / name)
        except _GONE:
            continue
        except PermissionError:  # listable but not readable: a non-dumpable or foreign process
            raise _denied(pid, "fd") from None
    return links


def read_fdinfo(pid: int, fd: int, root: Path = PROC) -> FdInfo | None:
    """/proc/PID/fdinfo/FD parsed, or None when the process or the fd is gone.

    Raises:
        ProcAccessDeniedError: when the caller may not read it (other uid, no root).
    """
    try:
        return parse_fdinfo((root / str(pid) / "fdinfo" / str(fd)).read_text())
    except _GONE:
        return None
    except PermissionError:
        raise _denied(pid, "fdinfo") from None


def _denied(pid: int, what: str) -> ProcAccessDeniedError:
    return ProcAccessDeniedError(
        f"not permitted to read /proc/{pid}/{what}: the kernel shows another user's descriptors "
        "only to the same uid or to root (CAP_SYS_PTRACE); run as that user or with sudo"
    )


def read_locks(root: Path = PROC) -> tuple[FileLock, ...]:
    """Every file lock held or awaited in the system (/proc/locks; empty if absent)."""
    text = _read_text(root / "locks")
    return parse_locks(text) if text else ()


def read_listen_counters(root: Path = PROC) -> ListenCounters:
    """TcpExt ListenOverflows/ListenDrops of the reader's network namespace (zeros if absent)."""
    text = _read_text(root / "net" / "netstat")
    return listen_counters(parse_netstat(text)) if text else ListenCounters(0, 0)


def read_lock_holders(proc: Path = PROC) -> tuple[int, ...]:
    """Pids holding an active (granted) file lock, from ``/proc/locks``: an flock or fcntl accept
    mutex shows its holder here (waiters show as ``->`` lines and are left out, and so are OFD
    locks, which belong to no pid)."""
    return tuple(lock.pid for lock in read_locks(proc) if not lock.waiting and lock.pid > 0)
