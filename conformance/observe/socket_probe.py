"""Reading a listening socket from outside its process: a borrowed copy of its descriptor.

/proc shows which descriptors point at a socket (``/proc/PID/fd``), their flags
(``/proc/PID/fdinfo``) and the accept-queue length (``/proc/net/tcp``, K11), but not the socket's
options. Two system calls reach further, each needing ptrace access to the process:

* ``pidfd_getfd(2)`` (Linux 5.6) installs in *our* process a new descriptor that refers to the
  same open file description as the target's descriptor (like ``SCM_RIGHTS``, K16). ``getsockopt``
  on it reads the socket itself: ``SO_REUSEADDR``, ``SO_REUSEPORT``, ``TCP_DEFER_ACCEPT`` (K19)
  and ``TCP_INFO``, whose ``tcpi_sacked`` is a listener's maximum backlog (E6, K11).
* ``kcmp(2)`` with ``KCMP_FILE`` says whether two descriptors of two processes refer to the same
  open file description: the picture's "one object, shared by every holder" is then measured,
  not assumed.

Both are refused without ptrace permission (another uid without ``CAP_SYS_PTRACE``, or a
non-descendant under Yama's ``ptrace_scope`` 1): the reading is then ``None``, shown as
"unknown", never guessed.

Discussion:
    *Why borrow a descriptor rather than ask sock_diag?* ``ss`` (NETLINK_SOCK_DIAG) shows a
    listener's backlog without any permission, but not ``SO_REUSEADDR`` nor ``TCP_DEFER_ACCEPT``;
    only ``getsockopt`` on the socket does, and ``pidfd_getfd`` is the one way to call it on
    somebody else's socket. The borrowed descriptor is one more reference to the open file
    description for the microseconds it exists; it is closed before the function returns, and
    ``getsockopt`` changes nothing.

    *ctypes and syscall numbers.* Python 3.11 wraps ``pidfd_open`` (``os.pidfd_open``) but not
    ``pidfd_getfd`` nor ``kcmp``. Their numbers come from the kernel's tables: ``pidfd_getfd`` is
    438 on x86_64 and on aarch64 (the generic table); ``kcmp`` is 312 on x86_64 and 272 on
    aarch64. On any other machine the readings are "unknown".
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import socket
import struct
from dataclasses import dataclass

# (pidfd_getfd, kcmp) by machine: arch/x86/entry/syscalls/syscall_64.tbl and
# include/uapi/asm-generic/unistd.h (which aarch64 uses).
_SYSCALL_NUMBERS = {"x86_64": (438, 312), "aarch64": (438, 272)}
_KCMP_FILE = 0
_TCP_LISTEN = 10  # include/net/tcp_states.h
# struct tcp_info (include/uapi/linux/tcp.h): eight u8 fields, then u32 tcpi_rto, tcpi_ato,
# tcpi_snd_mss, tcpi_rcv_mss, tcpi_unacked (offset 24), tcpi_sacked (offset 28). For a listener,
# unacked is the queue length and sacked the maximum backlog (E6).
_TCP_INFO_SIZE = 104
_TCPI_SACKED = struct.Struct("=I")
_TCPI_SACKED_OFFSET = 28


@dataclass(frozen=True, slots=True)
class SocketReading:
    """What ``getsockopt`` on a borrowed descriptor says about a listening socket.

    Every field is None when it could not be read; ``unknown_because`` then says why.

    Attributes:
        reuseaddr: ``SO_REUSEADDR`` is set (K15).
        reuseport: ``SO_REUSEPORT`` is set (K7).
        defer_accept: ``TCP_DEFER_ACCEPT`` in seconds, 0 when off (K19), as the kernel keeps
            it: rounded up to its SYN-ACK retransmission schedule, 1, 3, 7, 15, 31 … s (so
            Apache's 30 reads 31).
        max_backlog: the listener's maximum backlog, ``tcpi_sacked`` of ``TCP_INFO`` (E6).
        unknown_because: why nothing was read (e.g. "pidfd_getfd: EPERM"), None on success.
    """

    reuseaddr: bool | None = None
    reuseport: bool | None = None
    defer_accept: int | None = None
    max_backlog: int | None = None
    unknown_because: str | None = None


def read_socket(pid: int, fd: int) -> SocketReading:
    """Borrow descriptor ``fd`` of process ``pid`` and read its socket's options.

    Never raises for a refusal or a vanished process: the reading is then all None, with the
    reason (``pidfd_getfd: EPERM``, ``pidfd_open: ESRCH`` …).
    """
    numbers = _SYSCALL_NUMBERS.get(platform.machine())
    if numbers is None:
        return SocketReading(unknown_because=f"no pidfd_getfd number for {platform.machine()}")
    try:
        borrowed = _borrow(pid, fd, numbers[0])
    except OSError as error:
        return SocketReading(unknown_because=_reason(error))
    try:
        sock = socket.socket(fileno=borrowed)
    except OSError as error:  # not a socket: the descriptor is still ours to close
        os.close(borrowed)
        return SocketReading(unknown_because=_reason(error))
    with sock:
        try:
            return _options(sock)
        except OSError as error:
            return SocketReading(unknown_because=_reason(error))


def same_open_file(first: tuple[int, int], second: tuple[int, int]) -> bool | None:
    """Whether two (pid, fd) descriptors refer to the same open file description (``kcmp``),
    or None when the kernel refuses to say (no permission, no ``kcmp``, a process gone)."""
    numbers = _SYSCALL_NUMBERS.get(platform.machine())
    if numbers is None:
        return None
    (pid1, fd1), (pid2, fd2) = first, second
    result = _syscall(numbers[1], pid1, pid2, _KCMP_FILE, fd1, fd2)
    return None if result < 0 else result == 0


def _borrow(pid: int, fd: int, pidfd_getfd: int) -> int:
    """A descriptor of ours on the same open file description as ``pid``'s ``fd``.

    Raises:
        OSError: from pidfd_open or pidfd_getfd (EPERM, ESRCH, EBADF, ENOSYS).
    """
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as error:
        raise OSError(error.errno, f"pidfd_open: {errno.errorcode.get(error.errno or 0)}") from None
    try:
        borrowed = _syscall(pidfd_getfd, pidfd, fd, 0)
    finally:
        os.close(pidfd)
    if borrowed < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"pidfd_getfd: {errno.errorcode.get(code, code)}")
    return borrowed


def _options(sock: socket.socket) -> SocketReading:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
    listening = len(info) >= _TCPI_SACKED_OFFSET + 4 and info[0] == _TCP_LISTEN
    return SocketReading(
        reuseaddr=bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)),
        reuseport=bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)),
        defer_accept=sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT),
        max_backlog=_TCPI_SACKED.unpack_from(info, _TCPI_SACKED_OFFSET)[0] if listening else None,
    )


def _reason(error: OSError) -> str:
    if error.strerror and ":" in error.strerror:
        return error.strerror
    return f"getsockopt: {errno.errorcode.get(error.errno or 0, error.errno)}"


_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.syscall.restype = ctypes.c_long


def _syscall(number: int, *args: int) -> int:
    """``syscall(number, args…)``: the result, or -1 with ``ctypes.get_errno()`` set."""
    result: int = _LIBC.syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
    return result
