"""The errors of ``forkshare trace`` beyond the observer's own
(:mod:`forkshare.conformance.observe.errors`), each with its exit status."""

from __future__ import annotations

from forkshare.errors import UsageError


class ToolMissingError(UsageError):
    """Raised when a command the user asked for needs an external program (strace) that is not
    installed (exit 2); the message gives the install command."""
