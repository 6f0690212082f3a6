"""The errors the reference server reports on purpose, and every exit status it uses.

Exit statuses are a protocol between the master, its workers and whoever started the master (nginx's
"fatal code 2", gunicorn's ``WORKER_BOOT_ERROR``), so they are defined here and nowhere else:

=========  ======  ==========================================================================
process    status  meaning
=========  ======  ==========================================================================
master     0       stopped as asked (QUIT, TERM, INT)
master     1       runtime failure: a syscall failed (``bind()``...), or every worker was fatal
master     2       usage error: bad options or configuration; nothing was started
worker     0       exited as asked (graceful or fast stop, or its master died)
worker     1       crashed (an unexpected exception); the master respawns it
worker     2       fatal (e.g. the privilege drop failed): the master does **not** respawn it,
                   exactly like nginx's ``ngx_process_get_status`` for exit code 2
=========  ======  ==========================================================================
"""

from __future__ import annotations

from forkshare.errors import ForkshareError, UsageError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

WORKER_EXIT_OK = 0
WORKER_EXIT_CRASH = 1
WORKER_EXIT_FATAL = 2


class ServeError(ForkshareError):
    """Raised when the server cannot run (exit 1); the message names the failed object."""

    exit_code = EXIT_FAILURE


class OptionsError(UsageError):
    """Raised for a bad option or configuration value (exit 2); the message names the fix."""

    exit_code = EXIT_USAGE


class SyscallError(ServeError):
    """Raised when a system call fails; reported under the syscall's own name, like nginx.

    Example: ``bind(127.0.0.1:80) failed: [Errno 98] Address already in use``.
    """

    def __init__(self, call: str, target: str, error: OSError, hint: str = "") -> None:
        self.call = call
        self.target = target
        self.errno = error.errno
        message = f"{call}({target}) failed: [Errno {error.errno}] {error.strerror}"
        super().__init__(f"{message} ({hint})" if hint else message)


class PrivilegeError(ServeError):
    """Raised in a worker when dropping privileges (setgid, initgroups, setuid) fails: fatal."""
