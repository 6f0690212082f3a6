"""The common base of every error forkshare raises on purpose.

Each package has its own ``errors.py`` whose classes derive from :class:`ForkshareError`, so a caller
can catch everything forkshare reports deliberately with one clause, and the command line can map
errors to exit codes in one place.
"""


class ForkshareError(Exception):
    """Base of all deliberate forkshare errors; ``exit_code`` is what the command line exits with."""

    exit_code: int = 1


class UsageError(ForkshareError):
    """Raised when the user asked for something malformed; the message names the problem and the fix."""

    exit_code = 2
