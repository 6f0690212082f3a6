"""A command the verifier starts: its own session and process group, killed as a group.

Every process the verifier starts goes through :class:`ProcessGroup`, so that the target and all
its children are killed at the end, also on Ctrl-C (use it as a context manager). stdout and
stderr go to files, never pipes: a chatty target cannot block on a full pipe, and stderr is there
to quote when the target fails to start (exit 3).

Discussion:
    A target that daemonises with ``setsid()`` leaves our process group, and ``killpg`` cannot
    reach it. We do not chase it through /proc by name (that could kill someone else's process):
    callers that know extra pids (``forkshare trace`` learns them from strace) pass them to
    :meth:`ProcessGroup.stop`, which checks each pid's start time before signalling it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from forkshare.conformance.observe import procfs


class ProcessGroup:
    """A running command in a new session; the command is the group leader.

    Attributes:
        argv: the command line.
        process: the ``subprocess.Popen`` of the leader.
        stdout_path: file receiving the command's stdout.
        stderr_path: file receiving the command's stderr.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        output_dir: str | Path | None = None,
        preexec: Callable[[], None] | None = None,
        pass_fds: Sequence[int] = (),
    ) -> None:
        """Start ``argv`` with ``start_new_session=True``.

        ``preexec`` runs in the child before ``exec`` (e.g. to lower a resource limit);
        ``pass_fds`` are descriptors the command inherits (e.g. a socket-activated listener).

        Raises:
            FileNotFoundError: when the program does not exist (callers map it to their errors).
            PermissionError: when it is not executable.
        """
        self.argv = tuple(argv)
        directory = Path(output_dir or tempfile.mkdtemp(prefix="forkshare-"))
        self.stdout_path = directory / "stdout"
        self.stderr_path = directory / "stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=None if env is None else dict(env),
                cwd=cwd,
                start_new_session=True,
                preexec_fn=preexec,
                pass_fds=tuple(pass_fds),
            )
        self._started_after = _boot_ticks_now()

    @property
    def pid(self) -> int:
        """The leader's pid, which is also the process group id."""
        return self.process.pid

    def is_running(self) -> bool:
        """True while the leader has not exited (it is reaped here when it has)."""
        return self.process.poll() is None

    def stdout(self) -> str:
        """Everything the command wrote to stdout so far."""
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        """Everything the command wrote to stderr so far."""
        return self.stderr_path.read_text(errors="replace")

    def send(self, signum: int) -> None:
        """Send ``signum`` to the leader, if it still runs."""
        if self.is_running():
            os.kill(self.pid, signum)

    def stop(
        self,
        first: int = signal.SIGTERM,
        grace: float = 5.0,
        extra_pids: Iterable[int] = (),
    ) -> int | None:
        """Stop everything: ``first`` to the leader, up to ``grace`` seconds for it to exit, then
        SIGKILL to the whole group and to ``extra_pids`` started after us; reap the leader.

        Returns:
            The leader's exit status (negative when killed by that signal), or None when it
            cannot be reaped.
        """
        extra = tuple(extra_pids)
        try:
            self.send(first)
            self._wait(grace)
        finally:
            self._kill_group()
            self._kill_extra(extra)
            self._wait(2.0)
            self._wait_all_gone(extra, 2.0)
        return self.process.returncode

    def _wait_all_gone(self, extra: tuple[int, ...], timeout: float) -> None:
        """SIGKILL is delivered asynchronously: wait (bounded) until no member of the group and
        none of ``extra`` is still running (zombies are gone for our purpose)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._survivors(extra):
            time.sleep(0.01)

    def _survivors(self, extra: tuple[int, ...]) -> list[int]:
        survivors = []
        for pid in procfs.list_pids():
            stat = procfs.read_stat(pid)
            ours = stat is not None and (stat.pgrp == self.pid or pid in extra)
            if ours and stat is not None and stat.state not in ("Z", "X"):
                survivors.append(pid)
        return survivors

    def _wait(self, timeout: float) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout)

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # an empty group: every member exited
            os.killpg(self.pid, signal.SIGKILL)

    def _kill_extra(self, pids: Iterable[int]) -> None:
        for pid in pids:
            self.signal_descendant(pid, signal.SIGKILL)

    def signal_descendant(self, pid: int, signum: int) -> bool:
        """Send ``signum`` to ``pid`` if it is still one of ours: it must have started after
        the group did (else the number was reused by someone else's process).

        Returns:
            True when the signal was sent.
        """
        stat = procfs.read_stat(pid)
        if stat is None or stat.starttime < self._started_after or pid == os.getpid():
            return False
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return False
        return True

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop(grace=0.5 if exc is not None else 5.0)


def _boot_ticks_now() -> int:
    """Now, in the clock ticks since boot that /proc/PID/stat field 22 (starttime) uses."""
    ticks = os.sysconf("SC_CLK_TCK")
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * ticks) - 1
