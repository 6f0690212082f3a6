"""The errors the observer raises on purpose, each with the exit status the command line maps it to.

They belong to :mod:`forkshare.conformance.observe` (reading /proc, starting and waiting for a
target); ``forkshare trace`` and ``forkshare verify`` raise them too when they observe, launch or
wait. Each room's own errors live in its ``errors`` module.

Every class derives from :class:`forkshare.errors.ForkshareError` (runtime failure, exit 1) or
:class:`forkshare.errors.UsageError` (the user asked for something impossible, exit 2), except
:class:`TargetFailedToStartError` (exit 3, the issue's protocol for "the target failed to start").
Messages name the object and the fix, e.g. "nothing listens on 127.0.0.1:8080 — start the server
first or pass --pid".
"""

from __future__ import annotations

from forkshare.errors import ForkshareError, UsageError


class ProcFormatError(ForkshareError):
    """Raised when a /proc file (or an ``strace`` line, which quotes the same kernel structures)
    does not have the documented layout (a parser bug or a kernel we do not know); the message
    quotes the offending line."""


class NoSuchProcessError(UsageError):
    """Raised when the user names a pid that does not exist."""


class NothingListensError(UsageError):
    """Raised when the user names a port on which no socket is in the LISTEN state, or on which no
    process we can see holds the listening socket."""


class ProcAccessDeniedError(UsageError):
    """Raised when /proc/PID/fd (or fdinfo) of a process is unreadable: the kernel allows it only to
    the same uid or to a process with CAP_SYS_PTRACE (root) — DOMAIN §8."""


class GraphvizMissingError(ForkshareError):
    """Raised when ``--svg`` is requested but graphviz's ``dot`` is not on PATH (a runtime failure,
    exit 1: the text report was still printed)."""


class TargetFailedToStartError(ForkshareError):
    """Raised when a command the verifier launched exited or never listened before the deadline;
    the message carries the target's stderr."""

    exit_code = 3


class WaitTimedOutError(ForkshareError):
    """Raised by :func:`forkshare.conformance.observe.deadline.wait_until` when its condition did not hold
    before the deadline; the message names the condition and the time waited."""


class PortInUseError(UsageError):
    """Raised when the verifier is asked to start a target on a port something already listens on
    (the verifier could not tell the target's sockets from the squatter's)."""
