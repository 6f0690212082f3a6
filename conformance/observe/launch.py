"""Launching a server and waiting, bounded, until /proc shows it ready: the one launcher.

:func:`launch` starts a command in its own process group (:class:`ProcessGroup`) and waits until
something listens on the given port; :class:`RunningTarget` then takes snapshots and waits for
idle workers. A target that exits or never listens raises :class:`TargetFailedToStartError`
(exit 3) quoting its stderr. Every part that starts a server goes through it: the verifier, the
tracer (through :class:`ProcessGroup` and :func:`is_listening`), the server benchmark
(``forkshare bench``) and the tests (``tests/impl/serverproc.py``, ``tests/conformance``).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from forkshare.conformance.observe import procfs
from forkshare.conformance.observe.deadline import wait_until
from forkshare.conformance.observe.errors import (
    PortInUseError,
    TargetFailedToStartError,
    WaitTimedOutError,
)
from forkshare.conformance.observe.observer import ServerSnapshot, snapshot
from forkshare.conformance.observe.process_group import ProcessGroup
from forkshare.conformance.observe.role import Role


@dataclass(frozen=True, slots=True)
class RunningTarget:
    """A launched server: its process group (the command is the leader) and its port."""

    group: ProcessGroup
    port: int

    def snapshot(self) -> ServerSnapshot:
        """The server as /proc shows it now (by port: the leader may be a wrapper)."""
        return snapshot(port=self.port)

    def wait_for_workers(self, count: int, timeout: float = 10.0) -> ServerSnapshot:
        """Wait until exactly ``count`` workers exist and all sleep (state S: idle, waiting for a
        connection); return that snapshot.

        Raises:
            WaitTimedOutError: when they do not settle before ``timeout``.
        """

        def settled() -> ServerSnapshot | None:
            snap = self.snapshot()
            workers = snap.with_role(Role.WORKER)
            idle = len(workers) == count and all(w.state == "S" for w in workers)
            return snap if idle else None

        return wait_until(settled, timeout, f"{count} workers on port {self.port} are idle")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago (the kernel's ephemeral choice)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def is_listening(port: int, pid: int | None = None) -> bool:
    """True when a socket LISTENs on ``port`` (in the network namespace of ``pid`` if given)."""
    rows = procfs.read_tcp_table(pid)
    return any(row.state == procfs.TcpState.LISTEN and row.local.port == port for row in rows)


def launch(
    argv: Sequence[str],
    port: int,
    *,
    timeout: float = 10.0,
    env: Mapping[str, str] | None = None,
    output_dir: str | Path | None = None,
    preexec: Callable[[], None] | None = None,
) -> RunningTarget:
    """Start ``argv`` in a new process group and wait until something listens on ``port``
    (``env``, ``output_dir`` and ``preexec`` go to :class:`ProcessGroup`).

    Raises:
        PortInUseError: when something already listens on ``port``.
        TargetFailedToStartError: when the program cannot be executed, exits, or does not listen
            within ``timeout``; the group is killed and the message quotes its stderr.
    """
    if is_listening(port):
        raise PortInUseError(
            f"something already listens on port {port} (ss -ltnp shows what): stop it or "
            "choose another port"
        )
    try:
        group = ProcessGroup(argv, env=env, output_dir=output_dir, preexec=preexec)
    except OSError as error:
        raise TargetFailedToStartError(f"cannot run {argv[0]!r}: {error}") from None
    try:
        wait_until(lambda: _listening_or_dead(group, port), timeout, f"port {port} listens")
    except (WaitTimedOutError, TargetFailedToStartError) as error:
        group.stop(grace=1.0)
        raise TargetFailedToStartError(f"{error}\n{_stderr_tail(group)}") from None
    return RunningTarget(group, port)


def _listening_or_dead(group: ProcessGroup, port: int) -> bool:
    if is_listening(port):
        return True
    if not group.is_running():
        raise TargetFailedToStartError(
            f"{group.argv[0]} exited with status {group.process.returncode} before listening "
            f"on port {port}"
        )
    return False


def _stderr_tail(group: ProcessGroup, lines: int = 20) -> str:
    tail = group.stderr().splitlines()[-lines:]
    return "its stderr:\n" + "\n".join(tail) if tail else "(its stderr was empty)"
