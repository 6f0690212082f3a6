"""The TCP socket table through netlink (``NETLINK_SOCK_DIAG``), as ``ss`` reads it.

Reading ``/proc/net/tcp`` walks the kernel's whole connection hash table in text: on a machine
with a lot of memory that hash is large, and one read costs 15–25 ms even when it holds a few
rows. The verifier looks at the table dozens of times per second, so it asks the kernel the way
``ss`` does instead: one ``SOCK_DIAG_BY_FAMILY`` dump per address family (``sock_diag(7)``),
about a millisecond. The rows are the same :class:`~forkshare.conformance.observe.procfs.TcpRow`
values with the same meaning as the /proc text (K11: a LISTEN row's ``rx_queue`` is its accept
queue's length, its ``tx_queue`` 0; a handshake still held by TCP_DEFER_ACCEPT shows as
SYN_RECV, K19); TIME_WAIT rows are left out, as :func:`~forkshare.conformance.observe.procfs.read_tcp_table` does.

Discussion:
    *Why not only netlink?* /proc needs no privileges beyond reading a file and works in any
    container; netlink diag can be filtered out (seccomp, old kernels). The reader falls back to
    /proc whenever the dump fails, so netlink is an optimisation, never a dependency.
"""

from __future__ import annotations

import socket
import struct

from forkshare.conformance.observe.procfs import Endpoint, TcpRow, TcpState

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_DONE = 3
NLMSG_ERROR = 2
TCP_NEW_SYN_RECV = 12

_NLMSGHDR = struct.Struct("=IHHII")
# inet_diag_req_v2: family, protocol, ext, pad, states, then inet_diag_sockid (48 bytes).
_REQUEST = struct.Struct("=BBBxI48s")
# inet_diag_msg: family, state, timer, retrans, sockid (sport, dport big-endian, src, dst,
# if, cookie), expires, rqueue, wqueue, uid, inode.
_MESSAGE = struct.Struct("=BBBB2s2s16s16sI8sIIIII")
_ALL_BUT_TIME_WAIT = 0xFFFFFFFF & ~(1 << TcpState.TIME_WAIT)


def read_tcp_rows(timeout: float = 1.0) -> tuple[TcpRow, ...]:
    """Every TCP socket of the caller's network namespace but TIME_WAIT ones, IPv4 and IPv6.

    Raises:
        OSError: netlink sock_diag is unavailable or answered with an error.
    """
    rows: list[TcpRow] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(timeout)
        for family in (socket.AF_INET, socket.AF_INET6):
            rows.extend(_dump(nl, family))
    return tuple(rows)


def _dump(nl: socket.socket, family: int) -> list[TcpRow]:
    request = _REQUEST.pack(family, socket.IPPROTO_TCP, 0, _ALL_BUT_TIME_WAIT, bytes(48))
    header = _NLMSGHDR.pack(
        _NLMSGHDR.size + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0
    )
    nl.send(header + request)
    rows: list[TcpRow] = []
    while True:
        data = nl.recv(65536)
        offset = 0
        while offset + _NLMSGHDR.size <= len(data):
            length, kind, _, _, _ = _NLMSGHDR.unpack_from(data, offset)
            if kind == NLMSG_DONE:
                return rows
            if kind == NLMSG_ERROR:
                (errno,) = struct.unpack_from("=i", data, offset + _NLMSGHDR.size)
                raise OSError(-errno, "sock_diag dump failed")
            rows.append(_row(family, data, offset + _NLMSGHDR.size))
            offset += (length + 3) & ~3
            if length == 0:
                raise OSError("sock_diag: a zero-length message")


def _row(family: int, data: bytes, offset: int) -> TcpRow:
    fields = _MESSAGE.unpack_from(data, offset)
    _, state, _, _, sport, dport, src, dst, _, _, _, rqueue, wqueue, uid, inode = fields
    size = 4 if family == socket.AF_INET else 16
    state = TcpState.SYN_RECV if state == TCP_NEW_SYN_RECV else TcpState(state)
    return TcpRow(
        local=Endpoint(_host(family, src[:size]), int.from_bytes(sport, "big")),
        remote=Endpoint(_host(family, dst[:size]), int.from_bytes(dport, "big")),
        state=state,
        tx_queue=0 if state == TcpState.LISTEN else wqueue,
        rx_queue=rqueue,
        uid=uid,
        inode=inode,
    )


def _host(family: int, raw: bytes) -> str:
    host = socket.inet_ntop(family, raw)
    return host.removeprefix("::ffff:") if family == socket.AF_INET6 and "." in host else host
