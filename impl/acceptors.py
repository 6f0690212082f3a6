"""How a worker gets new connections: one small strategy per sharing mode.

================  ============================================================================
mode              what an idle worker waits in, and what one new connection wakes (E3)
================  ============================================================================
``blocking``      ``accept()`` on the shared socket: wake-one, FIFO (K3)
``poll``          epoll with the shared socket registered plainly: every idle worker (K4, the herd,
                  kept on purpose as a teaching mode; the losers get EAGAIN)
``exclusive``     epoll with ``EPOLLEXCLUSIVE``: one worker (K5); the registration is redone every
                  :data:`REORDER_EVERY` accepts, nginx's ``ngx_reorder_accept_events`` (1.21.6)
                  against the first-registrant imbalance (trac #2285)
``mutex``         nginx's accept mutex: only the holder has the sockets in its epoll set; it
                  holds the mutex across ``epoll_wait`` and the accepts and frees it before
                  serving (``ngx_process_events_and_timers``); the others retry every
                  :data:`ACCEPT_MUTEX_DELAY`
``reuseport``     epoll with the worker's own SO_REUSEPORT socket(s); the kernel hashes (K7)
``passfd``        the worker's channel to the master, which accepted already (Node RR)
================  ============================================================================

Every strategy stops accepting for :data:`ACCEPT_MUTEX_DELAY` on EMFILE/ENFILE instead of spinning
on a socket that stays readable (``ngx_event_accept``: ``ngx_disable_accept_events`` plus a timer,
property P18); the connections wait in the kernel's queue meanwhile.
"""

from __future__ import annotations

import errno
import logging
import select
import socket
import time
from collections.abc import Sequence
from typing import Final, Protocol

from forkshare.impl.accept_mutex import AcceptMutex
from forkshare.impl.listeners import Listener
from forkshare.impl.passfd import Receiver
from forkshare.impl.signals import SignalArrived, SignalInbox
from forkshare.impl.trace import Trace

log = logging.getLogger("forkshare.impl")

ACCEPT_MUTEX_DELAY: Final = 0.5  # nginx's accept_mutex_delay default (500ms)
REORDER_EVERY: Final = 16  # ngx_reorder_accept_events
REARM_EVERY: Final = 0.5
ACCEPT_BATCH: Final = 4  # accepts per readiness event (nginx's multi_accept is off: 1)
_OUT_OF_DESCRIPTORS: Final = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_PEER_GONE: Final = (errno.ECONNABORTED, errno.EPROTO, errno.EPERM)
Event = tuple[int, int]


class Host(Protocol):
    """What a strategy needs from its worker."""

    pid: int
    epoll: select.epoll
    trace: Trace
    inbox: SignalInbox

    def room(self) -> int:
        """How many more connections the worker takes now (0 when full or stopping)."""
        ...

    def add_connection(self, sock: socket.socket, peer: tuple[str, int] | str) -> None:
        """Take ownership of an accepted socket (any blocking flag) and serve it."""
        ...


class Acceptor:
    """The strategy interface, with the shared-listener behaviour used by poll and exclusive."""

    epoll_flags: int = select.EPOLLIN

    def __init__(self, host: Host, listeners: Sequence[Listener]) -> None:
        self.host = host
        self.listeners = {listener.fd: listener for listener in listeners}
        self.registered = False
        self.paused_until = 0.0
        self.accepts: dict[int, int] = dict.fromkeys(self.listeners, 0)

    @property
    def fds(self) -> frozenset[int]:
        """The descriptors whose readiness means "a connection is waiting" for this strategy."""
        return frozenset(self.listeners)

    def arm(self, now: float) -> None:
        """Before waiting: register interest if the worker has room, withdraw it otherwise."""
        wanted = self.host.room() > 0 and now >= self.paused_until
        if wanted and not self.registered:
            self._register()
        elif not wanted and self.registered:
            self._unregister()

    def wait(self, timeout: float) -> list[Event]:
        """Block until something happens; returns epoll events."""
        return self.host.epoll.poll(timeout)

    def on_ready(self, fd: int, now: float) -> None:
        """A listener is readable: accept up to :data:`ACCEPT_BATCH` connections."""
        listener = self.listeners[fd]
        for _ in range(min(ACCEPT_BATCH, self.host.room())):
            try:
                sock, peer = listener.sock.accept()
            except BlockingIOError:
                return  # another worker won the race (the herd's losers land here)
            except OSError as error:
                if error.errno in _PEER_GONE:
                    continue
                if error.errno in _OUT_OF_DESCRIPTORS:
                    self.pause(now, error)
                    return
                raise
            self._accepted(listener, sock, peer)

    def _accepted(self, listener: Listener, sock: socket.socket, peer: tuple[str, int]) -> None:
        if self.host.trace.enabled:
            self.host.trace.emit(
                "accept", inode=listener.inode, peer=f"{peer[0]}:{peer[1]}", fd=sock.fileno()
            )
        self.accepts[listener.fd] += 1
        self.host.add_connection(sock, peer)

    def after_events(self) -> None:
        """After handling one batch of events (the mutex strategy frees the mutex here)."""

    def pause(self, now: float, error: OSError) -> None:
        """Stop accepting for :data:`ACCEPT_MUTEX_DELAY` (EMFILE and friends)."""
        log.error("accept() failed: [Errno %s] %s; pausing accepts", error.errno, error.strerror)
        self.paused_until = now + ACCEPT_MUTEX_DELAY
        if self.registered:
            self._unregister()

    def timeout(self, timeout: float, now: float) -> float:
        """The wait bound, shortened so that a pause ends on time."""
        if self.paused_until > now:
            return min(timeout, self.paused_until - now)
        return timeout

    def stop(self) -> None:
        """Stop accepting for good and close this worker's descriptors of the sockets."""
        if self.registered:
            self._unregister()
        for listener in self.listeners.values():
            self.host.trace.emit("close_listener", inode=listener.inode)
            listener.close()
        self.listeners.clear()

    def _register(self) -> None:
        for fd in self.listeners:
            self.host.epoll.register(fd, self.epoll_flags)
        self.registered = True

    def _unregister(self) -> None:
        for fd in self.listeners:
            self.host.epoll.unregister(fd)
        self.registered = False


class PollAcceptor(Acceptor):
    """``poll``: plain epoll on the shared socket, so every idle worker wakes (the herd)."""


class ReuseportAcceptor(Acceptor):
    """``reuseport``: plain epoll on this slot's own SO_REUSEPORT socket(s)."""


class ExclusiveAcceptor(Acceptor):
    """``exclusive``: EPOLLEXCLUSIVE, re-registered every :data:`REORDER_EVERY` accepts.

    Also re-registered every :data:`REARM_EVERY` seconds: an exclusive wake-up is consumed by
    the first entry in the socket's wait queue even when that worker is stopped or stuck
    (``ep_poll_callback`` reports the wake as delivered), and a level-triggered entry is only
    re-checked when it is woken or added. ``EPOLL_CTL_ADD`` polls the socket at once, so a healthy
    worker finds connections that a stuck sibling absorbed within that bound.
    """

    epoll_flags = select.EPOLLIN | select.EPOLLEXCLUSIVE
    next_rearm = 0.0

    def arm(self, now: float) -> None:
        """As for every strategy, plus the periodic re-registration."""
        if self.registered and now >= self.next_rearm:
            self._unregister()
        super().arm(now)

    def _register(self) -> None:
        super()._register()
        self.next_rearm = time.monotonic() + REARM_EVERY

    def _accepted(self, listener: Listener, sock: socket.socket, peer: tuple[str, int]) -> None:
        super()._accepted(listener, sock, peer)
        if self.accepts[listener.fd] % REORDER_EVERY == 0 and self.registered:
            # EPOLL_CTL_DEL then ADD puts this worker at the back of the socket's wait queue
            # (a MOD would fail with EINVAL for an exclusive entry, K5).
            self.host.epoll.unregister(listener.fd)
            self.host.epoll.register(listener.fd, self.epoll_flags)


class BlockingAcceptor(Acceptor):
    """``blocking``: a blocking ``accept()`` on the one shared socket when the worker is idle.

    The socket carries SO_RCVTIMEO (set by the master), so ``accept()`` returns EAGAIN at least
    every half second and recorded signals are handled promptly.
    """

    def arm(self, now: float) -> None:
        """Nothing to register: the worker calls ``accept()`` itself."""

    def wait(self, timeout: float) -> list[Event]:
        """Accept (blocking) when idle and allowed; otherwise poll the open connection."""
        now = time.monotonic()
        if self.host.room() == 0 or now < self.paused_until or not self.listeners:
            return self.host.epoll.poll(self.timeout(timeout, now))
        listener = next(iter(self.listeners.values()))
        try:
            with self.host.inbox.interruptible():
                sock, peer = listener.sock.accept()
        except SignalArrived:
            pass  # handled by the worker loop right after this wait
        except BlockingIOError:
            pass  # SO_RCVTIMEO expired
        except OSError as error:
            if error.errno in _OUT_OF_DESCRIPTORS:
                self.pause(now, error)
            elif error.errno not in _PEER_GONE:
                raise
        else:
            self._accepted(listener, sock, peer)
        return self.host.epoll.poll(0)


class MutexAcceptor(Acceptor):
    """``mutex``: nginx's accept mutex (``ngx_trylock_accept_mutex``)."""

    def __init__(self, host: Host, listeners: Sequence[Listener], mutex: AcceptMutex) -> None:
        super().__init__(host, listeners)
        self.mutex = mutex
        self.held = False

    def arm(self, now: float) -> None:
        """Try the mutex; register the sockets while holding it, withdraw them otherwise."""
        room = self.host.room()
        if room > 0 and now >= self.paused_until and self.mutex.try_lock(self.host.pid):
            self.held = True
            self.host.trace.emit("mutex_acquire")
            if not self.registered:
                self._register()
        elif self.registered:
            self._unregister()

    def timeout(self, timeout: float, now: float) -> float:
        """Without the mutex, wait at most accept_mutex_delay before trying again."""
        bounded = super().timeout(timeout, now)
        return bounded if self.held else min(bounded, ACCEPT_MUTEX_DELAY)

    def after_events(self) -> None:
        """Free the mutex before serving anything (nginx unlocks after the posted accepts)."""
        self._release()

    def pause(self, now: float, error: OSError) -> None:
        """EMFILE: also give the mutex up so that another worker can accept."""
        super().pause(now, error)
        self._release()

    def stop(self) -> None:
        """Stop accepting and make sure the mutex is not left held."""
        self._release()
        super().stop()

    def _release(self) -> None:
        if self.held:
            self.held = False
            if self.mutex.unlock(self.host.pid):
                self.host.trace.emit("mutex_release")


class PassfdAcceptor(Acceptor):
    """``passfd``: connections arrive, already accepted, over the channel from the master."""

    def __init__(self, host: Host, receiver: Receiver) -> None:
        super().__init__(host, [])
        self.receiver: Receiver | None = receiver
        self.channel_fd = receiver.sock.fileno()

    @property
    def fds(self) -> frozenset[int]:
        """The channel is the only source of connections."""
        return frozenset((self.channel_fd,)) if self.receiver else frozenset()

    def arm(self, now: float) -> None:
        """Read the channel only while there is room: the master's window does the rest."""
        if self.receiver is None:
            return
        self.receiver.flush()
        wanted = self.host.room() > 0
        if wanted != self.registered:
            if wanted:
                self.host.epoll.register(self.channel_fd, select.EPOLLIN)
            else:
                self.host.epoll.unregister(self.channel_fd)
            self.registered = wanted

    def on_ready(self, fd: int, now: float) -> None:
        """Take the connections the master sent, and acknowledge them."""
        if self._receive(self.host.room()):
            self.stop()

    def _receive(self, limit: int) -> bool:
        if self.receiver is None:
            return True
        received, closed = self.receiver.receive(limit)
        for sock, peer in received:
            self.host.trace.emit("receive", peer=peer)
            self.host.add_connection(sock, peer)
        return closed

    def stop(self) -> None:
        """Take whatever the master already sent (it is ours to serve), then close the channel."""
        if self.receiver is None:
            return
        if self.registered:
            self.host.epoll.unregister(self.channel_fd)
            self.registered = False
        self._receive(1 << 16)
        self.receiver.close()
        self.receiver = None
