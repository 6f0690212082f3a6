"""The master: owns the listening sockets, forks the workers, turns signals into lifecycle steps.

The loop waits in ``epoll_wait`` on the signal pipe (and, in passfd mode, on the listening sockets
and the workers' channels), then handles the recorded intents in the priority order of
:class:`~forkshare.impl.signals.Intent` — reap, terminate, quit, reconfigure, upgrade, noaccept,
reopen — then its timers (respawn back-off, the delayed QUIT of an old generation, the graceful
deadline, the TERM → KILL escalation). nginx's ``ngx_master_process_cycle`` has the same shape.

Lifecycle (nginx's signals, facts §1.7):

* HUP: re-read the options; open the listeners that were added (and keep every other socket and
  its queue); fork the new generation on the same sockets; :data:`OLD_GENERATION_QUIT_DELAY` later
  send QUIT to the old generation; close the sockets that were removed. A reload that fails
  (bad file, ``bind()`` error, a mode change) keeps everything as it was (P10).
* QUIT: QUIT to the workers, close the master's sockets, exit when the workers are gone; SIGKILL
  whoever is left after ``graceful_timeout`` plus :data:`KILL_MARGIN`.
* TERM, INT: TERM to the workers, repeated with a doubling delay from 50 ms; past one second,
  SIGKILL (``ngx_terminate``).
* USR2: fork and exec a new master that inherits the sockets through ``FORKSHARE_FDS``; this
  master keeps serving until it gets QUIT (or until the new one dies: then the pid file is renamed
  back). Ignored while an upgrade is pending, and in a new master whose old master still runs
  (P12).
* WINCH: QUIT to the workers, keep the sockets; the next HUP starts a generation again.
* CHLD: reap; force-unlock the accept mutex if the dead worker held it (P2); re-offer a passfd
  worker's unacknowledged connections; respawn into the same slot (so a reuseport worker gets the
  same socket back, N1) unless the worker exited with the fatal status, with a back-off when a
  slot keeps dying young. When every slot is fatal, the master stops with status 1.

Discussion:
    *Respawn back-off.* nginx respawns at once, forever; gunicorn halts on boot errors. A worker
    that dies within :data:`CRASH_LOOP_WINDOW` of its start makes the next respawn of its slot
    wait 0.1 s, doubling up to :data:`BACKOFF_MAX`; one that lived longer is replaced at once, so
    a SIGKILLed worker's reuseport queue waits only for a fork.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from forkshare.errors import ForkshareError
from forkshare.impl import listeners as listening
from forkshare.impl import signals
from forkshare.impl.accept_mutex import AcceptMutex
from forkshare.impl.errors import EXIT_FAILURE, EXIT_OK, WORKER_EXIT_CRASH, WORKER_EXIT_FATAL
from forkshare.impl.listeners import Listener
from forkshare.impl.options import Options, load_options
from forkshare.impl.passfd import Dispatcher, channel_pair
from forkshare.impl.process import ExitStatus, reap_children, set_title
from forkshare.impl.signals import MASTER_SIGNALS, Intent, SignalInbox
from forkshare.impl.trace import Trace
from forkshare.impl.worker import WorkerSpec, run_worker

log = logging.getLogger("forkshare.impl")

PARENT_VARIABLE: Final = "FORKSHARE_PARENT"
OLD_GENERATION_QUIT_DELAY: Final = 0.1  # nginx: ngx_msleep(100) between spawning and QUIT
KILL_MARGIN: Final = 0.5
CRASH_LOOP_WINDOW: Final = 1.0
BACKOFF_BASE: Final = 0.1
BACKOFF_MAX: Final = 5.0
TERM_FIRST_DELAY: Final = 0.05
TERM_KILL_AFTER: Final = 1.0
PASS_ACCEPT_PAUSE: Final = 0.5
IDLE_WAIT: Final = 1.0


@dataclass(slots=True, eq=False)
class WorkerRecord:
    """A live worker as the master knows it."""

    pid: int
    slot: int
    generation: int
    started: float
    quitting: bool = False


class Master:
    """The master process's state and loop (see the module docstring)."""

    def __init__(
        self,
        options: Options,
        sockets: list[Listener],
        trace: Trace,
        upgrade_parent: int | None = None,
    ) -> None:
        self.options = options
        self.listeners = sockets
        self.trace = trace
        self.pid = os.getpid()
        self.upgrade_parent = upgrade_parent
        self.inbox = SignalInbox(MASTER_SIGNALS)
        self.epoll = select.epoll()
        self.mutex = AcceptMutex() if options.mode == "mutex" else None
        self.dispatcher = Dispatcher(trace) if options.mode == "passfd" else None
        self.generation = 0
        self.workers: dict[int, WorkerRecord] = {}
        self.stopping: Intent | None = None
        self.noaccepting = False
        self.exit_status = EXIT_OK
        self.respawn_at: dict[int, float] = {}
        self.failures: dict[int, int] = {}
        self.fatal_slots: set[int] = set()
        self.quit_old_at: float | None = None
        self.kill_at: float | None = None
        self.term_delay = TERM_FIRST_DELAY
        self.term_next: float | None = None
        self.new_master: int | None = None
        self.force_unlock_pending: set[int] = set()
        self.accept_paused_until = 0.0
        self.polled_listeners: set[int] = set()
        self.now = time.monotonic()

    # -- the loop ------------------------------------------------------------------------------

    def run(self) -> int:
        """Fork the first generation and serve until stopped; returns the exit status."""
        self.inbox.install()
        self.epoll.register(self.inbox.fileno, select.EPOLLIN)
        set_title("forkshare: master")
        self._start_generation()
        while not (self.stopping is not None and not self.workers):
            self._arm_passfd_listeners()
            events = self.epoll.poll(self._wait_time())
            self.now = time.monotonic()
            for fd, _ in events:
                self._on_event(fd)
            for intent, signum in self.inbox.take():
                self._handle(intent, signum)
            self._run_timers()
        return self._finish()

    def _on_event(self, fd: int) -> None:
        if fd == self.inbox.fileno or self.dispatcher is None:
            return
        if fd in self.polled_listeners:
            self._accept_and_pass(fd)
        else:
            self.dispatcher.on_readable(fd)

    def _handle(self, intent: Intent, signum: signal.Signals) -> None:
        if intent is not Intent.REAP:
            self.trace.emit("signal", signal=signum.name.removeprefix("SIG"))
            log.info("master %d: %s received", self.pid, signum.name)
        handlers: dict[Intent, Callable[[], None]] = {
            Intent.REAP: self._reap,
            Intent.TERMINATE: self._terminate,
            Intent.QUIT: self._quit,
            Intent.RECONFIGURE: self._reconfigure,
            Intent.UPGRADE: self._upgrade,
            Intent.NOACCEPT: self._noaccept,
            Intent.REOPEN: self._reopen,
        }
        handlers[intent]()

    def _wait_time(self) -> float:
        deadlines = [*self.respawn_at.values(), self.accept_paused_until]
        deadlines += [t for t in (self.quit_old_at, self.kill_at, self.term_next) if t is not None]
        upcoming = [t for t in deadlines if t > 0]
        wait = min([IDLE_WAIT, *(t - self.now for t in upcoming)])
        return max(0.0, wait)

    def _run_timers(self) -> None:
        now = self.now
        for slot, when in list(self.respawn_at.items()):
            if when <= now:
                del self.respawn_at[slot]
                self._spawn(slot)
        if self.quit_old_at is not None and self.quit_old_at <= now:
            self.quit_old_at = None
            self._quit_workers(lambda record: record.generation < self.generation)
        if self.kill_at is not None and self.kill_at <= now:
            self.kill_at = None
            self._signal_workers(signal.SIGKILL, lambda record: record.quitting)
        if self.term_next is not None and self.term_next <= now:
            self._escalate_terminate()
        for pid in list(self.force_unlock_pending):
            self._force_unlock(pid)

    # -- workers -------------------------------------------------------------------------------

    def _start_generation(self) -> None:
        self.generation += 1
        self.respawn_at.clear()
        self.failures.clear()
        self.fatal_slots.clear()
        for slot in range(self.options.workers):
            self._spawn(slot)

    def _spawn(self, slot: int) -> None:
        """Fork a worker into ``slot`` of the current generation (``ngx_spawn_process``)."""
        own = self._worker_listeners(slot)
        channel = channel_pair() if self.dispatcher is not None else None
        go_read, go_write = os.pipe2(os.O_CLOEXEC)
        with signals.blocked():
            pid = os.fork()
            if pid == 0:
                os.close(go_write)
                os.read(go_read, 1)  # wait until the master has traced the fork
                os.close(go_read)
                self._run_child(slot, own, channel)
        os.close(go_read)
        self.workers[pid] = WorkerRecord(pid, slot, self.generation, self.now)
        self.trace.emit("fork", child=pid, role="worker", slot=slot, generation=self.generation)
        os.close(go_write)
        if channel is not None and self.dispatcher is not None:
            master_end, worker_end = channel
            worker_end.close()
            self.epoll.register(master_end.fileno(), select.EPOLLIN)
            self.dispatcher.attach(pid, master_end)

    def _worker_listeners(self, slot: int) -> list[Listener]:
        if self.options.mode == "passfd":
            return []
        if self.options.is_reuseport:
            return [listener for listener in self.listeners if listener.slot == slot]
        return list(self.listeners)

    def _run_child(
        self,
        slot: int,
        own: list[Listener],
        channel: tuple[socket.socket, socket.socket] | None,
    ) -> None:
        """The child side of :meth:`_spawn`; never returns (CPython ``ForkingMixIn``)."""
        status = WORKER_EXIT_CRASH
        try:
            spec = WorkerSpec(
                slot=slot,
                generation=self.generation,
                master_pid=self.pid,
                options=self.options,
                listeners=own,
                trace=self.trace,
                mutex=self.mutex,
                channel=channel[1] if channel else None,
            )
            status = run_worker(spec, lambda: self._release_in_child(own, channel))
        except ForkshareError as error:
            log.error("worker %d: %s", os.getpid(), error)
        except BaseException:
            traceback.print_exc()
        finally:
            self.trace.emit("exit", status=status)
            os._exit(status)

    def _release_in_child(
        self, own: list[Listener], channel: tuple[socket.socket, socket.socket] | None
    ) -> None:
        """In a new worker: close what only the master may hold."""
        self.epoll.close()
        self.inbox.close()
        if channel is not None:
            channel[0].close()
        if self.dispatcher is not None:
            self.dispatcher.close()  # other workers' channels and connections not yet handed over
        for listener in self.listeners:
            if listener not in own:
                self.trace.emit("close_listener", inode=listener.inode)
                listener.close()

    def _reap(self) -> None:
        for pid, status in reap_children():
            if pid == self.new_master:
                self._on_new_master_exit(pid, status)
                continue
            record = self.workers.pop(pid, None)
            if record is None:
                continue
            self._force_unlock(pid)
            self._detach_channel(pid)
            respawn = self._should_respawn(record, status)
            self.trace.emit(
                "reap", child=pid, status=status.code, signal=status.signal, respawn=respawn
            )
            level = logging.INFO if record.quitting or self.stopping else logging.WARNING
            log.log(level, "worker %d (slot %d) %s", pid, record.slot, status)
            if respawn:
                self._schedule_respawn(record)
        self._check_all_fatal()

    def _should_respawn(self, record: WorkerRecord, status: ExitStatus) -> bool:
        if status.code == WORKER_EXIT_FATAL:
            log.error("worker %d exited with the fatal status 2: not respawned", record.pid)
            self.fatal_slots.add(record.slot)
            return False
        return (
            self.stopping is None
            and not self.noaccepting
            and not record.quitting
            and record.generation == self.generation
            and record.slot < self.options.workers
        )

    def _schedule_respawn(self, record: WorkerRecord) -> None:
        if self.now - record.started < CRASH_LOOP_WINDOW:
            self.failures[record.slot] = self.failures.get(record.slot, 0) + 1
        else:
            self.failures[record.slot] = 0
        failures = self.failures[record.slot]
        delay = 0.0 if failures == 0 else min(BACKOFF_BASE * 2 ** (failures - 1), BACKOFF_MAX)
        self.respawn_at[record.slot] = self.now + delay

    def _check_all_fatal(self) -> None:
        current = [r for r in self.workers.values() if r.generation == self.generation]
        if self.stopping is None and self.fatal_slots and not current and not self.respawn_at:
            log.error("every worker exited with the fatal status 2; stopping")
            self.exit_status = EXIT_FAILURE
            self._terminate()

    def _force_unlock(self, pid: int) -> None:
        if self.mutex is None:
            return
        freed = self.mutex.force_unlock(pid)
        if freed is None:
            self.force_unlock_pending.add(pid)
            return
        self.force_unlock_pending.discard(pid)
        if freed:
            self.trace.emit("mutex_force_unlock", holder=pid)
            log.warning("accept mutex held by dead worker %d: force-unlocked", pid)

    def _detach_channel(self, pid: int) -> None:
        if self.dispatcher is None:
            return
        fd = self.dispatcher.channel_fd(pid)
        if fd is not None:
            self.epoll.unregister(fd)
            self.dispatcher.detach(pid)

    def _signal_workers(self, signum: int, which: Callable[[WorkerRecord], bool]) -> None:
        for record in list(self.workers.values()):
            if which(record):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(record.pid, signum)

    def _quit_workers(self, which: Callable[[WorkerRecord], bool]) -> None:
        """Send QUIT (graceful) and arm the SIGKILL deadline."""
        for record in self.workers.values():
            if which(record) and not record.quitting:
                record.quitting = True
                if self.dispatcher is not None:
                    self.dispatcher.retire(record.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(record.pid, signal.SIGQUIT)
        deadline = self.now + self.options.graceful_timeout + KILL_MARGIN
        self.kill_at = deadline if self.kill_at is None else min(self.kill_at, deadline)

    # -- intents -------------------------------------------------------------------------------

    def _terminate(self) -> None:
        if self.stopping is Intent.TERMINATE:
            return
        self.stopping = Intent.TERMINATE
        self.respawn_at.clear()
        self._close_listeners(self.listeners)
        self._signal_workers(signal.SIGTERM, lambda record: True)
        self.term_delay = TERM_FIRST_DELAY
        self.term_next = self.now + self.term_delay

    def _escalate_terminate(self) -> None:
        self.term_delay *= 2
        if self.term_delay > TERM_KILL_AFTER:
            self._signal_workers(signal.SIGKILL, lambda record: True)
        else:
            self._signal_workers(signal.SIGTERM, lambda record: True)
        self.term_next = self.now + self.term_delay

    def _quit(self) -> None:
        if self.stopping is not None:
            return
        self.stopping = Intent.QUIT
        self.respawn_at.clear()
        if self.dispatcher is not None:
            self.dispatcher.flush()
        self._close_listeners(self.listeners)
        self._quit_workers(lambda record: True)

    def _noaccept(self) -> None:
        if self.stopping is None:
            self.noaccepting = True
            self.respawn_at.clear()
            self._quit_workers(lambda record: True)

    def _reopen(self) -> None:
        log.info("master %d: logs go to stderr; nothing to reopen", self.pid)

    def _reconfigure(self) -> None:
        if self.stopping is not None:
            return
        try:
            new = load_options(self.options.argv)
        except ForkshareError as error:
            log.error("reload failed, keeping the running configuration: %s", error)
            return
        except SystemExit:
            log.error("reload failed: the options no longer parse; keeping the running ones")
            return
        if new.mode != self.options.mode:
            log.error("reload cannot change --mode %s to %s: use USR2", self.options.mode, new.mode)
            return
        wanted = listening.wanted_keys(new.listen, new.is_reuseport, new.workers)
        try:
            result = listening.reconcile(self.listeners, wanted, new.backlog)
        except ForkshareError as error:
            log.error("reload failed, keeping the running configuration: %s", error)
            return
        listening.set_mode_flags(result.opened, new.mode)
        listening.trace_listeners(self.trace, result.opened, "listen")
        logging.getLogger("forkshare").setLevel(new.log_level.upper())
        if result.close and new.is_reuseport and not listening.migrate_req_enabled():
            log.warning(
                "closing %d reuseport sockets resets their queued connections "
                "(net.ipv4.tcp_migrate_req=0)",
                len(result.close),
            )
        # Close the removed sockets before forking, or the new generation would inherit them;
        # the old generation holds its copies until it has quit.
        self._close_listeners(result.close)
        self.options, self.listeners = new, result.listeners
        self.noaccepting = False
        self._start_generation()
        self.quit_old_at = self.now + OLD_GENERATION_QUIT_DELAY

    def _upgrade(self) -> None:
        if self.stopping is not None:
            return
        if self.new_master is not None:
            log.warning("USR2 ignored: the new master %d is still running", self.new_master)
            return
        if self.upgrade_parent is not None and os.getppid() == self.upgrade_parent:
            log.warning("USR2 ignored: the old master %d still runs", self.upgrade_parent)
            return
        self._rename_pidfile(to_oldbin=True)
        with signals.blocked():
            pid = os.fork()
            if pid == 0:
                self._exec_new_master()
        self.new_master = pid
        self.trace.emit("fork", child=pid, role="master", slot=None, generation=self.generation)
        log.info("master %d: new master %d started", self.pid, pid)

    def _exec_new_master(self) -> None:
        """In the child of :meth:`_upgrade`: exec a new master with the sockets; never returns."""
        try:
            signals.reset_for_child()
            signals.unblock_all()
            env = dict(os.environ)
            env.update(listening.upgrade_environment(self.listeners))
            env[PARENT_VARIABLE] = str(self.pid)
            argv = [sys.executable, "-m", "forkshare.impl", *self.options.argv]
            os.execve(sys.executable, argv, env)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(EXIT_FAILURE)

    def _on_new_master_exit(self, pid: int, status: ExitStatus) -> None:
        self.trace.emit("reap", child=pid, status=status.code, signal=status.signal, respawn=False)
        log.warning("new master %d %s; this master carries on", pid, status)
        self.new_master = None
        self._rename_pidfile(to_oldbin=False)
        if self.noaccepting and self.stopping is None:
            self.noaccepting = False
            self._start_generation()

    # -- sockets -------------------------------------------------------------------------------

    def _close_listeners(self, closing: Iterable[Listener]) -> None:
        for listener in list(closing):
            if listener.fd in self.polled_listeners:
                self.epoll.unregister(listener.fd)
                self.polled_listeners.discard(listener.fd)
            if listener.fd >= 0:
                self.trace.emit("close_listener", inode=listener.inode)
                listener.close()
            if listener in self.listeners:
                self.listeners.remove(listener)

    def _arm_passfd_listeners(self) -> None:
        """In passfd mode, poll the sockets only while someone can take connections."""
        if self.dispatcher is None:
            return
        wanted = (
            self.stopping is None
            and self.now >= self.accept_paused_until
            and not self.dispatcher.is_backlogged
            and self.dispatcher.has_room
        )
        fds = {listener.fd for listener in self.listeners} if wanted else set()
        for fd in self.polled_listeners - fds:
            self.epoll.unregister(fd)
        for fd in fds - self.polled_listeners:
            self.epoll.register(fd, select.EPOLLIN)
        self.polled_listeners = fds

    def _accept_and_pass(self, fd: int) -> None:
        listener = next(item for item in self.listeners if item.fd == fd)
        assert self.dispatcher is not None
        for _ in range(16):
            try:
                sock, peer = listener.sock.accept()
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno in (103, 71):  # ECONNABORTED, EPROTO: the client gave up
                    continue
                log.error("accept() failed: [Errno %s] %s; pausing", error.errno, error.strerror)
                self.accept_paused_until = self.now + PASS_ACCEPT_PAUSE
                return
            text = f"{peer[0]}:{peer[1]}"
            self.trace.emit("accept", inode=listener.inode, peer=text, fd=sock.fileno())
            self.dispatcher.offer(sock, text)
            if self.dispatcher.is_backlogged:
                return

    # -- pid file and exit ---------------------------------------------------------------------

    def _rename_pidfile(self, to_oldbin: bool) -> None:
        path = self.options.pidfile
        if path is None:
            return
        old = path.with_name(path.name + ".oldbin")
        source, target = (path, old) if to_oldbin else (old, path)
        with contextlib.suppress(OSError):
            source.rename(target)

    def _finish(self) -> int:
        self._close_listeners(self.listeners)
        if self.dispatcher is not None:
            self.dispatcher.close()
        if self.mutex is not None:
            self.mutex.close()
        remove_pidfile(self.options.pidfile, self.pid)
        self.trace.emit("exit", status=self.exit_status)
        log.info("master %d: exiting with status %d", self.pid, self.exit_status)
        return self.exit_status


def write_pidfile(path: Path | None) -> None:
    """Write this process's pid, as nginx's ``ngx_create_pidfile``."""
    if path is not None:
        path.write_text(f"{os.getpid()}\n")


def remove_pidfile(path: Path | None, pid: int) -> None:
    """Remove the pid file if it still names ``pid`` (a new master may own it by now)."""
    if path is None:
        return
    with contextlib.suppress(OSError, ValueError):
        if int(path.read_text().strip()) == pid:
            path.unlink()
