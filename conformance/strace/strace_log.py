"""Parsing the output of ``strace -f -tt -o FILE``: one event per system call or process exit.

With ``-f`` and ``-o``, strace prefixes every line with the pid (the thread id, for threads) and,
with ``-tt``, the wall-clock time. A call interrupted by another process's output is split in two
lines, ``name(args <unfinished ...>`` and ``<... name resumed>rest) = result``; :func:`parse_strace`
joins them into one :class:`Syscall` placed at the *resumed* line (the moment the result exists).
Signal lines (``--- SIGCHLD … ---``) are dropped; exits (``+++ exited with 0 +++``, ``+++ killed by
SIGKILL +++``) become :class:`ProcessExit`.

Discussion:
    We parse text rather than use ``strace --seccomp-bpf``/``-X raw`` or ptrace ourselves: the
    decoded text (``sin_port=htons(8080)``, ``EPOLLEXCLUSIVE``) is what the report shows the
    reader, and strace's format for the calls we trace has been stable for a decade. The parser
    keeps the argument text raw; :mod:`forkshare.conformance.strace.syscall_trace` picks out the few
    fields it needs with small regular expressions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from forkshare.conformance.observe.errors import ProcFormatError

_PREFIX = re.compile(r"(?P<pid>\d+)\s+(?P<time>\d{2}:\d{2}:\d{2}\.\d+)\s+(?P<rest>.*)")
_CALL = re.compile(r"(?P<name>\w+)\((?P<args>.*)")
_RESUMED = re.compile(r"<\.\.\. (?P<name>\w+) resumed>(?P<args>.*)")
_RESULT = re.compile(
    r"\)\s+=\s+(?P<result>-?\d+|\?|0x[0-9a-fA-F]+)(?:\s+(?P<errno>E[A-Z0-9]+)(?:\s+\(.*\))?)?"
    r"(?:\s+<[\d.]+>)?\s*$"
)
_EXIT = re.compile(r"\+\+\+ (?:exited with (?P<status>\d+)|killed by (?P<signal>\w+)).*\+\+\+")
_UNFINISHED = " <unfinished ...>"


@dataclass(frozen=True, slots=True)
class Syscall:
    """One completed system call.

    Attributes:
        index: position in the log (events are in completion order).
        pid: the calling thread's id (equal to the process id for single-threaded processes).
        time: strace's ``-tt`` wall-clock time, as printed.
        name: the system call (``accept4``).
        args: the decoded argument text between the parentheses.
        result: the return value, or None for ``?`` (the call did not return: exit, kill).
        errno: the error name when it failed (``EAGAIN``), else None.
    """

    index: int
    pid: int
    time: str
    name: str
    args: str
    result: int | None
    errno: str | None

    @property
    def succeeded(self) -> bool:
        """Returned without an error."""
        return self.result is not None and self.errno is None and self.result >= 0

    def __str__(self) -> str:
        outcome = "?" if self.result is None else str(self.result)
        return f"{self.name}({self.args}) = {outcome}" + (f" {self.errno}" if self.errno else "")


@dataclass(frozen=True, slots=True)
class ProcessExit:
    """A traced thread or process ended: ``status`` when it exited, ``signal`` when killed."""

    index: int
    pid: int
    time: str
    status: int | None
    signal: str | None


StraceEvent = Syscall | ProcessExit


def parse_strace(lines: Iterable[str]) -> tuple[StraceEvent, ...]:
    """Parse ``strace -f -tt`` output into events, in log order.

    A trailing ``<unfinished ...>`` whose resumption is missing (the log was read while the
    target ran) is dropped.

    Raises:
        ProcFormatError: on a line that is neither a call, an exit, a signal nor a strace note.
    """
    events: list[StraceEvent] = []
    pending: dict[int, tuple[str, str]] = {}
    for line in lines:
        event = _parse_line(line.rstrip("\n"), len(events), pending)
        if event is not None:
            events.append(event)
    return tuple(events)


def _parse_line(line: str, index: int, pending: dict[int, tuple[str, str]]) -> StraceEvent | None:
    match = _PREFIX.fullmatch(line)
    if match is None:
        if not line.strip() or line.startswith("strace: "):
            return None
        raise ProcFormatError(f"not an strace -f -tt line: {line[:120]!r}")
    pid, time, rest = int(match["pid"]), match["time"], match["rest"]
    if rest.startswith("---"):
        return None  # a signal delivery
    if rest.startswith("+++"):
        return _parse_exit(rest, index, pid, time)
    if rest.endswith(_UNFINISHED):
        call = _CALL.match(rest[: -len(_UNFINISHED)])
        if call is not None:
            pending[pid] = (call["name"], call["args"])
        return None
    resumed = _RESUMED.match(rest)
    if resumed is not None:
        name, head = pending.pop(pid, (resumed["name"], ""))
        return _complete(index, pid, time, name, head + resumed["args"])
    call = _CALL.match(rest)
    if call is None:
        raise ProcFormatError(f"not an strace call: {line[:120]!r}")
    return _complete(index, pid, time, call["name"], call["args"])


def _complete(index: int, pid: int, time: str, name: str, text: str) -> Syscall | None:
    """``text`` is everything after ``name(``: the arguments, ``)``, ``=`` and the result."""
    result = _RESULT.search(text)
    if result is None:
        return None  # e.g. "exit_group(0) = ?" variants or a truncated last line
    value = result["result"]
    return Syscall(
        index=index,
        pid=pid,
        time=time,
        name=name,
        args=text[: result.start()],
        result=None if value == "?" else int(value, 0),
        errno=result["errno"],
    )


def _parse_exit(rest: str, index: int, pid: int, time: str) -> ProcessExit:
    match = _EXIT.match(rest)
    if match is None:
        raise ProcFormatError(f"not an strace exit line: {rest[:120]!r}")
    status = match["status"]
    return ProcessExit(index, pid, time, int(status) if status else None, match["signal"])
