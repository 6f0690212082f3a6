"""passfd mode: the master accepts and hands each connection to a worker with SCM_RIGHTS.

Node.js ``cluster``'s round-robin scheduler (``round_robin_handle.js``) done with one
``SOCK_SEQPACKET`` socketpair per worker: the master sends ``(sequence number, peer)`` with the
connection's descriptor attached (K16: the worker gets a new descriptor for the same open file
description), the worker answers ``A<seq>`` once the descriptor is in its table, and only then does
the master close its own copy (property P20). A worker is offered at most :data:`WINDOW` unanswered
connections; when every worker is full the master keeps a short queue and, past
:data:`PENDING_LIMIT`, stops accepting so that the kernel's accept queue absorbs the burst.

When a worker dies, the connections it never acknowledged go back to the head of the queue and
are offered to another worker: none of them is lost (compare gunicorn ``--reuse-port``, G2).

Discussion:
    *Acknowledge on receipt, not on completion.* Node acks when the worker accepted the handle;
    a connection the worker has started to serve is the worker's, and its death loses it exactly
    as in every other mode (a request in flight). Acking later would make the master re-send a
    connection whose request bytes a dead worker had already consumed.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from forkshare.impl.trace import Trace

log = logging.getLogger("forkshare.impl")

WINDOW: Final = 4
PENDING_LIMIT: Final = 64
_SEQ: Final = struct.Struct("!Q")
_ACK: Final = b"A"
_NACK: Final = b"N"


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """A close-on-exec SOCK_SEQPACKET pair: (master end, worker end), both non-blocking."""
    master_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    master_end.setblocking(False)
    worker_end.setblocking(False)
    return master_end, worker_end


@dataclass(slots=True, eq=False)
class Handoff:
    """A connection the master accepted and has not yet seen acknowledged."""

    seq: int
    sock: socket.socket
    peer: str


@dataclass(slots=True, eq=False)
class Channel:
    """The master's end of one worker's channel and what that worker owes an answer for."""

    pid: int
    sock: socket.socket
    retired: bool = False
    outstanding: dict[int, Handoff] = field(default_factory=dict)


class Dispatcher:
    """The master side: round-robin over workers, acknowledgements, re-dispatch on death."""

    def __init__(self, trace: Trace) -> None:
        self._trace = trace
        self._channels: dict[int, Channel] = {}
        self._by_fd: dict[int, Channel] = {}
        self._pending: deque[Handoff] = deque()
        self._next_seq = 1
        self._turn = 0

    @property
    def channel_fds(self) -> list[int]:
        """The master ends to poll for acknowledgements."""
        return list(self._by_fd)

    @property
    def has_room(self) -> bool:
        """Whether some worker can be offered a connection now."""
        return any(
            not channel.retired and len(channel.outstanding) < WINDOW
            for channel in self._channels.values()
        )

    def channel_fd(self, pid: int) -> int | None:
        """The master end's descriptor for worker ``pid``, if it has a channel."""
        channel = self._channels.get(pid)
        return channel.sock.fileno() if channel else None

    @property
    def is_backlogged(self) -> bool:
        """True when the master should stop accepting and let the kernel queue absorb load."""
        return len(self._pending) >= PENDING_LIMIT

    def attach(self, pid: int, master_end: socket.socket) -> None:
        """Start offering connections to the worker ``pid``."""
        channel = Channel(pid, master_end)
        self._channels[pid] = channel
        self._by_fd[master_end.fileno()] = channel
        self.pump()

    def retire(self, pid: int) -> None:
        """Stop offering connections to ``pid`` (it was told to stop)."""
        if pid in self._channels:
            self._channels[pid].retired = True

    def detach(self, pid: int) -> None:
        """Forget a dead worker; its unacknowledged connections are offered again.

        The caller unregisters :meth:`channel_fd` from its poller first: this closes it.
        """
        channel = self._channels.pop(pid, None)
        if channel is None:
            return
        del self._by_fd[channel.sock.fileno()]
        for handoff in sorted(channel.outstanding.values(), key=lambda h: h.seq, reverse=True):
            self._pending.appendleft(handoff)
        if channel.outstanding:
            log.info("re-dispatching %d connections of worker %d", len(channel.outstanding), pid)
        channel.sock.close()
        self.pump()

    def offer(self, sock: socket.socket, peer: str) -> None:
        """Queue a freshly accepted connection and hand out what the window allows."""
        self._pending.append(Handoff(self._next_seq, sock, peer))
        self._next_seq += 1
        self.pump()

    def pump(self, ignore_window: bool = False) -> None:
        """Send queued connections to workers with room, round-robin."""
        while self._pending:
            channel = self._pick(ignore_window)
            if channel is None or not self._send(channel, self._pending[0]):
                return
            self._pending.popleft()

    def _pick(self, ignore_window: bool) -> Channel | None:
        channels = [c for c in self._channels.values() if not c.retired]
        for offset in range(len(channels)):
            channel = channels[(self._turn + offset) % len(channels)]
            if ignore_window or len(channel.outstanding) < WINDOW:
                self._turn = (self._turn + offset + 1) % len(channels)
                return channel
        return None

    def _send(self, channel: Channel, handoff: Handoff) -> bool:
        message = _SEQ.pack(handoff.seq) + handoff.peer.encode()
        try:
            socket.send_fds(channel.sock, [message], [handoff.sock.fileno()])
        except BlockingIOError:
            return False  # full: try again on the next pump
        except OSError:
            channel.retired = True  # gone: the reaper re-offers what it owed
            return False
        channel.outstanding[handoff.seq] = handoff
        self._trace.emit("pass", to=channel.pid, peer=handoff.peer)
        return True

    def on_readable(self, fd: int) -> None:
        """Read acknowledgements from one worker's channel."""
        channel = self._by_fd.get(fd)
        if channel is None:
            return
        while True:
            try:
                message = channel.sock.recv(16)
            except (BlockingIOError, ConnectionError):
                break
            if not message:
                channel.retired = True
                break
            self._on_answer(channel, message)
        self.pump()

    def _on_answer(self, channel: Channel, message: bytes) -> None:
        kind, seq = message[:1], _SEQ.unpack(message[1:9])[0]
        handoff = channel.outstanding.pop(seq, None)
        if handoff is None:
            return
        if kind == _ACK:
            handoff.sock.close()  # the worker holds it now (P20)
        else:
            self._pending.appendleft(handoff)

    def flush(self) -> None:
        """On a graceful stop: hand every queued connection out, closing what cannot be sent."""
        self.pump(ignore_window=True)
        while self._pending:
            self._pending.popleft().sock.close()

    def close(self) -> None:
        """Close every channel and every connection still held (the master is exiting)."""
        for channel in self._channels.values():
            for handoff in channel.outstanding.values():
                handoff.sock.close()
            channel.sock.close()
        for handoff in self._pending:
            handoff.sock.close()
        self._channels.clear()
        self._by_fd.clear()
        self._pending.clear()


def _recv_fd(sock: socket.socket) -> tuple[bytes, list[int], int]:
    """``socket.recv_fds`` with ``MSG_CMSG_CLOEXEC``, which the stdlib helper does not pass."""
    data, ancillary, flags, _ = sock.recvmsg(512, socket.CMSG_SPACE(4), socket.MSG_CMSG_CLOEXEC)
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % 4
            fds.extend(struct.unpack(f"{usable // 4}i", payload[:usable]))
    return data, fds, flags


class Receiver:
    """The worker side: take descriptors off the channel and acknowledge each one."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._unsent = bytearray()

    def receive(self, limit: int) -> tuple[list[tuple[socket.socket, str]], bool]:
        """Receive up to ``limit`` connections.

        Returns:
            The connections with their peers, and whether the master closed the channel.
        """
        received: list[tuple[socket.socket, str]] = []
        while len(received) < limit:
            try:
                data, fds, flags = _recv_fd(self.sock)
            except BlockingIOError:
                break
            except ConnectionError:
                return received, True
            if not data:
                return received, True
            seq = data[: _SEQ.size]
            if not fds or flags & socket.MSG_CTRUNC:  # EMFILE on receipt: let the master retry
                for fd in fds:
                    socket.socket(fileno=fd).close()
                self._answer(_NACK + seq)
                continue
            self._answer(_ACK + seq)
            received.append((socket.socket(fileno=fds[0]), data[_SEQ.size :].decode()))
        return received, False

    def _answer(self, message: bytes) -> None:
        self._unsent += message
        self.flush()

    def flush(self) -> None:
        """Send buffered answers (a full channel is retried on the next loop turn)."""
        while self._unsent:
            try:
                self.sock.send(self._unsent[:9])
            except BlockingIOError:
                return
            except ConnectionError:
                self._unsent.clear()
                return
            del self._unsent[:9]

    def close(self) -> None:
        """Close the worker's end."""
        with contextlib.suppress(OSError):
            self.sock.close()
