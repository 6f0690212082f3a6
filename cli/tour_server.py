"""The tour's live parts: the reference server under strace, its kernel objects, its clients.

:func:`live_server` starts ``forkshare serve`` on 127.0.0.1 in its own process group, under strace
when it can trace here (:func:`find_strace`;
:func:`~forkshare.conformance.strace.strace_run.traced_server`), and kills the group when the
block ends, also on Ctrl-C; :func:`wait_until_idle` waits (bounded) until every worker is idle.
The three parts read that one server: :func:`show_trace` its system calls by role,
:func:`show_picture` the kernel objects from /proc, :func:`show_acceptances` who accepted each of
a few connections (/proc, the server's reply, and the trace's accept4 calls).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from forkshare.conformance.observe.client import Client
from forkshare.conformance.observe.deadline import wait_until
from forkshare.conformance.observe.errors import (
    PortInUseError,
    TargetFailedToStartError,
    WaitTimedOutError,
)
from forkshare.conformance.observe.kernel_objects import KernelObjects
from forkshare.conformance.observe.kernel_picture import render_lines
from forkshare.conformance.observe.launch import RunningTarget, free_port, launch
from forkshare.conformance.observe.observer import who_accepted
from forkshare.conformance.observe.process_group import ProcessGroup
from forkshare.conformance.observe.procfs import Endpoint
from forkshare.conformance.observe.role import Role
from forkshare.conformance.strace.strace_log import Syscall
from forkshare.conformance.strace.strace_run import TracedServer, traced_server
from forkshare.conformance.strace.syscall_trace import TraceAnalysis, TracedProcess
from forkshare.model.observation import Outcome
from forkshare.prose import Prose
from forkshare.tour_text import TourText

START_TIMEOUT = 15.0
"""Seconds for the server to listen (strace slows Python's start-up) and its workers to idle."""
CLIENT_TIMEOUT = 3.0
"""Seconds a client waits to be accepted, then for the reply."""
STRACE_CHECK_TIMEOUT = 5.0
"""Seconds strace has to trace ``true`` before it counts as unusable."""
PORT_ATTEMPTS = 3

T = TypeVar("T")

_MASTER_CALLS = frozenset({"socket", "setsockopt", "bind", "listen"})
_FORKS = frozenset({"clone", "clone3", "fork", "vfork"})
_WORKER_CALLS = frozenset({"socket", "setsockopt", "bind", "listen", "epoll_create1", "epoll_ctl"})
_ONCE = frozenset({"epoll_ctl"})
_EPOLL_DATA = re.compile(r", data=\{[^}]*\}")
_REPLY = re.compile(rb"pid=\d+ generation=\d+ slot=\d+")


@dataclass(frozen=True, slots=True)
class LiveServer:
    """The running reference server: its process group, its port, its trace when traced."""

    group: ProcessGroup
    port: int
    traced: TracedServer | None

    def analysis(self) -> TraceAnalysis | None:
        """The trace so far, None without strace."""
        return self.traced.analysis() if self.traced is not None else None


def serve_command(mode: str, workers: int, port: int) -> list[str]:
    """``forkshare serve`` from this interpreter, on 127.0.0.1:``port``."""
    listen = f"127.0.0.1:{port}"
    options = ["--workers", str(workers), "--mode", mode, "--listen", listen]
    return [sys.executable, "-m", "forkshare", "serve", *options]


@dataclass(frozen=True, slots=True)
class Strace:
    """Whether strace can trace here: its path, or why not (missing, or ptrace refused)."""

    path: str | None
    why_not: str


def find_strace() -> Strace:
    """strace when it is installed and may trace a child here (a container may forbid ptrace:
    strace then fails at once), checked on ``true`` within STRACE_CHECK_TIMEOUT seconds."""
    path = shutil.which("strace")
    if path is None:
        return Strace(None, "")
    try:
        check = subprocess.run(
            [path, "-f", "-q", "-o", os.devnull, "--", "true"],
            capture_output=True,
            text=True,
            timeout=STRACE_CHECK_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Strace(None, f"strace -- true did not finish in {STRACE_CHECK_TIMEOUT:g} s")
    if check.returncode != 0:
        lines = check.stderr.strip().splitlines() or [f"exit status {check.returncode}"]
        return Strace(None, lines[-1])
    return Strace(path, "")


@contextlib.contextmanager
def live_server(mode: str, workers: int, strace: str | None) -> Iterator[LiveServer]:
    """Start ``forkshare serve`` on a free port (under ``strace`` when given) and wait until it
    listens; stop its process group when the block ends. A port taken by someone else between
    choosing and binding it is chosen again (PORT_ATTEMPTS times).

    Raises:
        TargetFailedToStartError: when it exits or does not listen within START_TIMEOUT.
    """
    with contextlib.ExitStack() as stack:
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = free_port()
            try:
                server = stack.enter_context(_started(mode, workers, port, strace))
            except (PortInUseError, TargetFailedToStartError) as error:
                if attempt == PORT_ATTEMPTS or not _port_was_taken(error):
                    raise
                continue
            yield server
            return


def _port_was_taken(error: Exception) -> bool:
    return isinstance(error, PortInUseError) or "Address already in use" in str(error)


@contextlib.contextmanager
def _started(mode: str, workers: int, port: int, strace: str | None) -> Iterator[LiveServer]:
    argv = serve_command(mode, workers, port)
    if strace is None:
        target = launch(argv, port, timeout=START_TIMEOUT)
        try:
            yield LiveServer(target.group, port, None)
        finally:
            target.group.stop(grace=2.0)
        return
    with traced_server(strace, argv, port=port, timeout=START_TIMEOUT) as traced:
        yield LiveServer(traced.group, port, traced)


def wait_until_idle(server: LiveServer, workers: int) -> None:
    """Wait (bounded) until ``workers`` workers sleep and, when traced, no process is being born.

    Raises:
        WaitTimedOutError: when they do not settle within START_TIMEOUT.
    """
    if server.traced is not None:
        server.traced.wait_quiet()
    RunningTarget(server.group, server.port).wait_for_workers(workers, timeout=START_TIMEOUT)


# ---------------------------------------------------------------- part 1: the system calls


def show_trace(console: Console, text: TourText, analysis: TraceAnalysis) -> None:
    """The master's socket calls and forks of its workers, each worker's epoll calls, and the
    tracer's rules."""
    table = Table(show_header=False, box=None, padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    workers = analysis.with_role(Role.WORKER)
    if analysis.master is not None:
        forks = {w.pid for w in workers}
        _add_rows(table, text, analysis.master, lambda c: _is_master_call(c, forks))
    for worker in workers:
        _add_rows(table, text, worker, lambda c: c.name in _WORKER_CALLS)
        repeated = [c for c in worker.calls if c.name == "epoll_ctl"][1:]
        if repeated:
            more = text.more_calls.format(count=len(repeated), name="epoll_ctl")
            table.add_row("", Text(more, style="dim"))
    console.print(table)
    console.print(Prose(text.trace_clone_note, style="dim"))
    for verdict in analysis.verdicts:
        mark = Text("✓ ", style="green") if verdict.holds else Text("✗ ", style="red bold")
        console.print(mark + Text(f"{text.rule(verdict.rule)} ({verdict.rule})"))


def _is_master_call(call: Syscall, workers: set[int]) -> bool:
    if call.name in _FORKS:
        return call.result in workers
    return call.name in _MASTER_CALLS


def _add_rows(
    table: Table, text: TourText, process: TracedProcess, shown: Callable[[Syscall], bool]
) -> None:
    label = f"{text.words.role(process.role)} {process.pid}"
    seen: set[str] = set()
    for call in (c for c in process.calls if shown(c)):
        if call.name in _ONCE and call.name in seen:
            continue  # a worker's re-registrations are counted instead (show_trace)
        seen.add(call.name)
        table.add_row(label, Text(brief(call)))
        label = ""


def brief(call: Syscall, width: int = 110) -> str:
    """A call as strace wrote it, shortened: forks without their flags, epoll_ctl without its
    user data, anything else cut at ``width``."""
    if call.name in _FORKS:
        return f"{call.name}(…) = {call.result}"
    shown = str(call)
    if call.name == "epoll_ctl":
        shown = _EPOLL_DATA.sub("", shown)
    return shown if len(shown) <= width else shown[: width - 1] + "…"


# ---------------------------------------------------------------- part 2: the picture


def show_picture(console: Console, text: TourText, objects: KernelObjects) -> None:
    """The picture of the kernel objects, then what it says in one sentence."""
    console.print(Panel(Text("\n".join(render_lines(objects, text.words))), expand=False))
    console.print(Prose(picture_takeaway(text, objects), style="bold"))


def picture_takeaway(text: TourText, objects: KernelObjects) -> str:
    """The sentence that fits the counts: shared, master only, or one socket per slot."""
    if len(objects.sockets) > 1:
        return text.picture_per_slot.format(sockets=len(objects.sockets))
    if len(objects.descriptors) <= 1:
        return text.picture_master_only
    holders = {d.pid for d in objects.descriptors}
    return text.picture_shared.format(descriptors=len(objects.descriptors), processes=len(holders))


# ---------------------------------------------------------------- part 3: who accepts


@dataclass(frozen=True, slots=True)
class Acceptance:
    """One client connection: who accepted it according to /proc, and what the server replied.

    Attributes:
        number: 1, 2, … in the order the clients connected.
        client: the client's own address, None when it could not connect.
        acceptor: the pid holding the accepted connection (/proc), None when not seen in time.
        reply: the body's ``pid=… generation=… slot=…``, else the client's outcome.
    """

    number: int
    client: Endpoint | None
    acceptor: int | None
    reply: str


def accept_one(port: int, number: int) -> Acceptance:
    """Connect, see in /proc who accepted the connection, send a request, read the reply."""
    client = Client(port)
    try:
        if client.local is None:
            return Acceptance(number, None, None, client.outcome())
        local = client.local
        acceptor = _bounded(lambda: who_accepted(local.port, server_port=port))
        client.send_request()
        _bounded(lambda: _REPLY.search(client.received) or client.outcome() != Outcome.PENDING)
        found = _REPLY.search(client.received)
        reply = found.group().decode() if found else client.outcome()
        return Acceptance(number, local, acceptor, reply)
    finally:
        client.close()


def _bounded(condition: Callable[[], T | None]) -> T | None:
    """``condition``'s first truthy value within CLIENT_TIMEOUT, else None."""
    try:
        return wait_until(condition, CLIENT_TIMEOUT, "the client is accepted and answered")
    except WaitTimedOutError:
        return None


def show_acceptances(
    console: Console,
    text: TourText,
    acceptances: Sequence[Acceptance],
    objects: KernelObjects,
    analysis: TraceAnalysis | None,
) -> None:
    """One row per connection, then each acceptor's accept4 calls as the trace counted them."""
    table = Table(*text.connections_columns)
    roles = {p.pid: text.words.role(p.role) for p in objects.processes}
    for item in acceptances:
        acceptor = (
            text.not_seen
            if item.acceptor is None
            else f"{roles.get(item.acceptor, '?')} {item.acceptor}"
        )
        table.add_row(str(item.number), str(item.client or "-"), acceptor, item.reply)
    console.print(table)
    acceptors = [p for p in analysis.processes if p.accepts] if analysis is not None else []
    for process in acceptors:
        console.print(Prose(_accept_line(text, process), style="dim"))
    console.print(Prose(text.connections_takeaway, style="bold"))


def _accept_line(text: TourText, process: TracedProcess) -> str:
    who = f"{text.words.role(process.role)} {process.pid}"
    line = text.accepts_line.format(who=who, count=sum(process.accepts.values()))
    eagain = process.failed_accepts.get("EAGAIN", 0)
    return line + (text.eagain.format(count=eagain) if eagain else "")
