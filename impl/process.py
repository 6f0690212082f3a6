"""Process hygiene shared by the master and its workers: parent-death signal, titles, identity.

Discussion:
    *Which parent-death signal.* ``PR_SET_PDEATHSIG`` with SIGTERM gives the worker its fast-stop
    path (traced, sockets closed at once) instead of an untraceable SIGKILL; the periodic parent
    check in the worker loop (``os.getppid() != master``) covers both a master that died before
    ``prctl`` ran and a worker whose SIGTERM is somehow not acted on. nginx has neither and its
    workers outlive a killed master forever (facts §1.8, B8); gunicorn's sync worker only checks
    ``getppid`` after each ``select`` timeout (≤ 15 s idle).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import grp
import os
import pwd
import signal
from dataclasses import dataclass
from typing import Final

from forkshare.impl.errors import PrivilegeError

PR_SET_PDEATHSIG: Final = 1  # <linux/prctl.h>
PR_SET_NAME: Final = 15
COMM_LENGTH: Final = 15  # TASK_COMM_LEN - 1

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def set_parent_death_signal(signum: signal.Signals) -> None:
    """Ask the kernel to send ``signum`` to this process when its parent thread dies.

    Raises:
        OSError: prctl failed.
    """
    if _libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def set_title(title: str) -> None:
    """Name the process: ``/proc/PID/comm`` always, the full command line with ``setproctitle``.

    ``setproctitle`` is optional; without it ``ps -o comm`` still shows e.g. ``fs: worker 0 g1``.
    """
    short = title.replace("forkshare: ", "fs: ").replace(" gen ", " g")[:COMM_LENGTH]
    _libc.prctl(PR_SET_NAME, ctypes.c_char_p(short.encode()), 0, 0, 0)
    try:
        import setproctitle  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return
    setproctitle.setproctitle(title)


def drop_privileges(user: str, group: str | None) -> None:
    """setgid, initgroups, setuid, in that order (nginx's ``ngx_worker_process_init``).

    Does nothing unless the process runs as root: the option only makes sense for a master that
    needs root to bind (nginx logs the same and ignores it).

    Raises:
        PrivilegeError: a call failed; the worker must exit with the fatal status.
    """
    if os.geteuid() != 0:
        return
    try:
        entry = pwd.getpwnam(user)
        gid = grp.getgrnam(group).gr_gid if group else entry.pw_gid
        os.setgid(gid)
        os.initgroups(user, gid)
        os.setuid(entry.pw_uid)
    except (KeyError, OSError) as error:
        raise PrivilegeError(
            f"dropping privileges to {user}:{group or ''} failed: {error}"
        ) from error


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """A decoded ``waitpid`` status: an exit code or a terminating signal."""

    code: int | None
    signal: int | None

    @classmethod
    def decode(cls, status: int) -> ExitStatus:
        """Decode the raw status returned by ``os.waitpid``."""
        if os.WIFSIGNALED(status):
            return cls(None, os.WTERMSIG(status))
        return cls(os.waitstatus_to_exitcode(status), None)

    def __str__(self) -> str:
        if self.signal is not None:
            return f"killed by {signal.Signals(self.signal).name}"
        return f"exited with status {self.code}"


def reap_children() -> list[tuple[int, ExitStatus]]:
    """Every child that has exited, without blocking (CPython ``ForkingMixIn.collect_children``)."""
    reaped: list[tuple[int, ExitStatus]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped.append((pid, ExitStatus.decode(status)))
