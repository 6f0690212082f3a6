"""Running a server under ``strace -f``: start, wait until it listens, poke it, stop, read the log.

:func:`traced_server` starts the command as strace's child in a new process group
(:class:`ProcessGroup`); the log goes to a file that is re-read while waiting, so the first
successful ``listen()`` tells us the server is up even when we were not told its port and even
when it daemonised. While it runs, :class:`TracedServer` reads the trace so far, so a caller can
look at the live server (``forkshare demo`` draws it from /proc and sends it clients) and at the
calls that built it. At the end it stops everything: SIGTERM to the master, a bounded wait for
strace to see every tracee exit, then SIGKILL to the group and to every traced pid still alive (a
daemon that called ``setsid()`` has left the group).

:func:`run_under_strace`, the engine of ``forkshare trace``, is one such run: it makes the
requested client connections (each one recorded as a
:class:`~forkshare.conformance.observe.client.ClientResult`), waits (bounded) for their ``accept``
calls to show in the log, then stops.
"""

from __future__ import annotations

import contextlib
import signal
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from forkshare.conformance.observe import procfs
from forkshare.conformance.observe.client import ClientResult, probe
from forkshare.conformance.observe.deadline import wait_until
from forkshare.conformance.observe.errors import (
    PortInUseError,
    TargetFailedToStartError,
    WaitTimedOutError,
)
from forkshare.conformance.observe.launch import is_listening
from forkshare.conformance.observe.process_group import ProcessGroup
from forkshare.conformance.strace.strace_log import parse_strace
from forkshare.conformance.strace.syscall_trace import TraceAnalysis, analyze

TRACED_CALLS = (
    "socket,setsockopt,bind,listen,clone,clone3,fork,vfork,execve,accept,accept4,"
    "epoll_create,epoll_create1,epoll_ctl,close,dup2,dup3,prctl"
)


@dataclass(frozen=True, slots=True)
class TracedRun:
    """The outcome of one run: the analysed trace, the port, and what each client saw."""

    analysis: TraceAnalysis
    port: int
    clients: tuple[ClientResult, ...]
    stderr: str


def strace_argv(strace: str, log: Path, command: Sequence[str]) -> list[str]:
    """The strace command line: follow forks (``-f``), microsecond times (``-tt``), quiet
    about attaching (``-q``), only the socket-sharing calls, into ``log``."""
    return [
        strace,
        "-f",
        "-q",
        "-tt",
        "-e",
        f"trace={TRACED_CALLS}",
        "-o",
        str(log),
        "--",
        *command,
    ]


class TracedServer:
    """A command running under strace that listens on :attr:`port`; its trace is read on demand.

    Made by :func:`traced_server`, which stops it when its block ends; :meth:`stop` then returns
    the final trace (the log itself is gone with its temporary directory).
    """

    def __init__(self, group: ProcessGroup, log: Path, port: int) -> None:
        self.group = group
        self.log = log
        self.port = port
        self._final: TraceAnalysis | None = None
        self._stderr = ""

    def analysis(self) -> TraceAnalysis:
        """The trace so far (after :meth:`stop`: the final one)."""
        return self._final if self._final is not None else _analyze(self.log)

    @property
    def stderr(self) -> str:
        """What strace and the command wrote to stderr (complete after :meth:`stop`)."""
        return self._stderr if self._final is not None else self.group.stderr()

    def wait_quiet(self) -> None:
        """Wait (bounded) until no new process appeared for :data:`QUIET` seconds."""
        _wait_quiet(self.log)

    def wait_accepts(self, count: int) -> None:
        """Wait (bounded) until the trace shows ``count`` successful accepts in all."""
        _wait_accepts(self.log, count)

    def stop(self) -> TraceAnalysis:
        """Stop the server and strace (idempotent); return the final trace."""
        if self._final is None:
            _stop(self.group, self.log)
            self._final = _analyze(self.log)
            self._stderr = self.group.stderr()
        return self._final


@contextlib.contextmanager
def traced_server(
    strace: str, command: Sequence[str], *, port: int | None, timeout: float
) -> Iterator[TracedServer]:
    """Run ``command`` under strace until it listens, hand it over, and stop it at the end of
    the block, also on an exception or Ctrl-C.

    Args:
        strace: path of the strace binary.
        command: the server command line.
        port: the port to wait for; None to take the first port the trace shows listening.
        timeout: seconds to wait for the server to listen.

    Raises:
        PortInUseError: when ``port`` is given and something already listens on it.
        TargetFailedToStartError: when the command (or strace) exits or never listens in time.
    """
    if port is not None and is_listening(port):
        raise PortInUseError(f"something already listens on port {port}: stop it or pick another")
    with tempfile.TemporaryDirectory(prefix="forkshare-trace-") as directory:
        log = Path(directory) / "strace.log"
        try:
            group = ProcessGroup(strace_argv(strace, log, command), output_dir=directory)
        except OSError as error:
            raise TargetFailedToStartError(f"cannot run {strace}: {error}") from None
        server = TracedServer(group, log, port or 0)
        try:
            server.port = _wait_listening(group, log, port, timeout)
            yield server
        finally:
            server.stop()


def run_under_strace(
    strace: str,
    command: Sequence[str],
    *,
    port: int | None,
    connections: int,
    timeout: float,
) -> TracedRun:
    """Run ``command`` under strace until it listens, make ``connections`` clients, stop it.

    Arguments and errors as :func:`traced_server`; ``connections`` is the number of client
    connections to make once it listens (to see who accepts).
    """
    with traced_server(strace, command, port=port, timeout=timeout) as server:
        clients = tuple(probe(server.port) for _ in range(connections))
        server.wait_accepts(sum(c.local is not None for c in clients))
        server.wait_quiet()
    return TracedRun(server.stop(), server.port, clients, server.stderr)


def _analyze(log: Path) -> TraceAnalysis:
    text = log.read_text(errors="replace") if log.exists() else ""
    return analyze(parse_strace(text.splitlines()))


def _wait_listening(group: ProcessGroup, log: Path, port: int | None, timeout: float) -> int:
    def listening() -> int | None:
        analysis = _analyze(log)
        if analysis.listening:
            found = port if port is not None else _listening_port(analysis)
            if found is not None and is_listening(found):
                return found
        if not group.is_running():
            raise TargetFailedToStartError(
                f"{group.argv[-1]!r} exited (strace status {group.process.returncode}) before "
                f"listening\n{_tail(group.stderr())}"
            )
        return None

    where = f"port {port}" if port is not None else "a port"
    try:
        return wait_until(listening, timeout, f"the traced server listens on {where}")
    except WaitTimedOutError as error:
        raise TargetFailedToStartError(f"{error}\n{_tail(group.stderr())}") from None


def _listening_port(analysis: TraceAnalysis) -> int | None:
    """The first listening address's port; for ``bind(…, port 0)`` ask /proc which port the
    traced processes' listening sockets got."""
    port = int(analysis.listening[0].rpartition(":")[2] or 0)
    if port:
        return port
    pids = [p.pid for p in analysis.processes]
    return next(iter(_ports_held_by(pids)), None)


def _ports_held_by(pids: list[int]) -> list[int]:
    listening = {
        row.inode: row.local.port
        for row in procfs.read_tcp_table()
        if row.state == procfs.TcpState.LISTEN
    }
    ports: list[int] = []
    for pid in pids:
        for link in (procfs.read_fd_links(pid) or {}).values():
            inode = procfs.socket_inode(link)
            if inode in listening and listening[inode] not in ports:
                ports.append(listening[inode])
    return ports


def _wait_accepts(log: Path, count: int) -> None:
    """Give the workers a bounded moment to accept the connections we made (to report them)."""
    if count == 0:
        return
    # On timeout the report shows fewer accepts than connections; not a failure of the run.
    with contextlib.suppress(WaitTimedOutError):
        wait_until(lambda: _analyze(log).accept_count >= count, 5.0, f"{count} accepts")


QUIET = 0.5
"""Seconds without a new process after which the server counts as started."""
QUIET_LIMIT = 3.0
"""The longest we wait for that quiet (a server that keeps forking is stopped anyway)."""


def _wait_quiet(log: Path) -> None:
    """Wait (bounded) until no new process appeared for QUIET seconds, so every worker the server
    starts is in the trace: gunicorn sleeps up to 0.1 s between spawns, and stopping right after
    the first worker served the probes would hide what the others do (and who is the master)."""
    seen = [len(_analyze(log).processes), time.monotonic()]

    def quiet() -> bool:
        count, now = len(_analyze(log).processes), time.monotonic()
        if count != seen[0]:
            seen[:] = [count, now]
        return now - seen[1] >= QUIET

    with contextlib.suppress(WaitTimedOutError):
        wait_until(quiet, QUIET_LIMIT, "no new process for a moment")


def _stop(group: ProcessGroup, log: Path, grace: float = 5.0) -> None:
    master = _analyze(log).master
    if master is not None and group.signal_descendant(master.pid, signal.SIGTERM):
        # The master's own shutdown (nginx: TERM its workers, wait, exit) is the clean path;
        # whatever it leaves behind is killed with the group below.
        with contextlib.suppress(WaitTimedOutError):
            wait_until(lambda: _has_exited(master.pid), grace, f"master {master.pid} exits")
    group.stop(signal.SIGKILL, grace=1.0, extra_pids=[p.pid for p in _analyze(log).processes])


def _has_exited(pid: int) -> bool:
    stat = procfs.read_stat(pid)
    return stat is None or stat.state in ("Z", "X")


def _tail(text: str, lines: int = 20) -> str:
    tail = text.strip().splitlines()[-lines:]
    return "its stderr:\n" + "\n".join(tail) if tail else "(its stderr was empty)"
