"""Running a forkshare command as a child and reading its JSON: bounded, and cleaned up after.

:func:`run_json_command` starts a command in its own process group, waits for it at most a given
time, stops it (also on Ctrl-C in the parent) together with anything it left behind, and parses
its stdout as one JSON object; when there is none, :class:`CommandResult` says why. ``forkshare
demo`` reads the proof suite and the verifier this way (:mod:`forkshare.tour_model`).

Discussion:
    *Stopping a child that starts servers of its own.* The verifier runs each target in a new
    session, so killing the verifier's process group does not reach its targets, and a verifier
    killed outright (SIGKILL, or SIGTERM's default action) leaves them running, reparented to
    init. Two measures, both needed: the child is stopped with SIGINT first, as Ctrl-C would stop
    it, so that its own clean-up runs; and while it runs we are a child subreaper
    (``PR_SET_CHILD_SUBREAPER``), so whatever it still leaves behind is reparented to us rather
    than to init, where we can tell it from anybody else's processes, kill its group and reap it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from forkshare.conformance.observe import procfs
from forkshare.conformance.observe.deadline import wait_until
from forkshare.conformance.observe.errors import WaitTimedOutError
from forkshare.conformance.observe.process_group import ProcessGroup

_PR_SET_CHILD_SUBREAPER = 36  # include/uapi/linux/prctl.h
CHILD_GRACE = 5.0
"""Seconds a child command has to clean up after SIGINT before its group is killed."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A child command's JSON document, or why there is none.

    Attributes:
        document: the JSON object it printed, None when it printed none.
        reason: without a document, the last line of its stderr or its exit status; else "".
        timed_out: the seconds it was given when it did not finish in them, else None.
    """

    document: Mapping[str, Any] | None
    reason: str = ""
    timed_out: float | None = None


def run_json_command(argv: Sequence[str], timeout: float) -> CommandResult:
    """Run ``argv`` in its own process group for at most ``timeout`` seconds and parse its
    stdout as one JSON object.

    The command is stopped at the end whatever happened (a timeout, Ctrl-C in the tour) with
    SIGINT first, as Ctrl-C would stop it: the verifier then kills the servers it started in
    their own sessions, which a SIGKILL of its group would leave running; SIGKILL follows after
    :data:`CHILD_GRACE` seconds.
    """
    with (
        tempfile.TemporaryDirectory(prefix="forkshare-demo-") as directory,
        orphans_killed(),
    ):
        group = ProcessGroup(argv, output_dir=directory)
        try:
            finished = _wait_for_exit(group, timeout)
        finally:
            group.stop(first=signal.SIGINT, grace=CHILD_GRACE)
        stdout, stderr = group.stdout(), group.stderr()
    if not finished:
        return CommandResult(None, timed_out=timeout)
    status = group.process.returncode
    try:
        document = json.loads(stdout)
    except ValueError:
        return CommandResult(None, _last_line(stderr) or f"exit status {status}")
    if not isinstance(document, dict):
        return CommandResult(None, f"exit status {status}")
    return CommandResult(document)


@contextlib.contextmanager
def orphans_killed() -> Iterator[None]:
    """Be a child subreaper for the block; at its end, kill (by process group) and reap every
    process that was orphaned to us in it.

    A child command may leave processes of its own behind when it is stopped: the verifier
    starts each target in a new session, and a target whose verifier died is reparented. As a
    subreaper (``PR_SET_CHILD_SUBREAPER``) the tour inherits them instead of init, so it can tell
    them from anybody else's processes and kill them.
    """
    before = set(procfs.read_children(os.getpid()))
    _set_subreaper(True)
    try:
        yield
    finally:
        adopted = set(procfs.read_children(os.getpid())) - before
        for pid in adopted:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
        _reap(adopted, before)
        _set_subreaper(False)


def _reap(adopted: set[int], before: set[int]) -> None:
    """Reap the adopted processes and, as they die, their orphaned children (bounded)."""
    deadline = time.monotonic() + CHILD_GRACE
    while adopted and time.monotonic() < deadline:
        for pid in list(adopted):
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue
            adopted.discard(pid)
        adopted |= set(procfs.read_children(os.getpid())) - before
        time.sleep(0.02)


def _set_subreaper(on: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)


def _wait_for_exit(group: ProcessGroup, timeout: float) -> bool:
    try:
        wait_until(lambda: not group.is_running(), timeout, " ".join(group.argv), interval=0.1)
    except WaitTimedOutError:
        return False
    return True


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""
