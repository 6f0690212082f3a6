"""Every process the verifier starts dies with its group, also when the caller fails; a target
that does not start is reported with its stderr (exit 3)."""

from __future__ import annotations

import signal
import socket
import sys

import pytest

from forkshare.conformance.observe import procfs
from forkshare.conformance.observe.deadline import wait_until
from forkshare.conformance.observe.errors import (
    PortInUseError,
    TargetFailedToStartError,
    WaitTimedOutError,
)
from forkshare.conformance.observe.launch import free_port, launch
from forkshare.conformance.observe.process_group import ProcessGroup

pytestmark = pytest.mark.process

# A parent that forks a child which ignores SIGTERM, then both sleep.
STUBBORN_FAMILY = """
import os, signal, time
if os.fork() == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print(os.getpid(), flush=True)
time.sleep(60)
"""


def running(pid: int) -> bool:
    stat = procfs.read_stat(pid)
    return stat is not None and stat.state not in ("Z", "X")


def family(group: ProcessGroup) -> list[int]:
    def two_pids() -> list[int] | None:
        pids = [int(word) for word in group.stdout().split()]
        return pids if len(pids) == 2 else None

    return wait_until(two_pids, 5, "both processes print their pid")


def test_stop_kills_every_member_of_the_group_even_one_ignoring_sigterm() -> None:
    group = ProcessGroup([sys.executable, "-c", STUBBORN_FAMILY])
    pids = family(group)
    assert group.stop(grace=0.2) == -signal.SIGTERM
    assert not any(running(pid) for pid in pids)


def test_leaving_the_with_block_by_an_exception_kills_the_group() -> None:
    pids: list[int] = []

    def interrupted() -> None:
        with ProcessGroup([sys.executable, "-c", STUBBORN_FAMILY]) as group:
            pids.extend(family(group))
            raise KeyboardInterrupt  # Ctrl-C in the verifier

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert len(pids) == 2
    assert not any(running(pid) for pid in pids)


def test_a_target_that_exits_at_once_fails_to_start_with_its_stderr() -> None:
    argv = [sys.executable, "-c", "import sys; sys.exit('bad config')"]
    with pytest.raises(TargetFailedToStartError, match="bad config") as failure:
        launch(argv, free_port(), timeout=5)
    assert failure.value.exit_code == 3


def test_a_target_that_never_listens_fails_to_start_after_the_timeout() -> None:
    with pytest.raises(TargetFailedToStartError, match=r"gave up after 0\.3 s"):
        launch(["sleep", "30"], free_port(), timeout=0.3)


def test_a_program_that_does_not_exist_fails_to_start() -> None:
    with pytest.raises(TargetFailedToStartError, match="cannot run"):
        launch(["/nonexistent/server"], free_port())


def test_launching_on_a_port_in_use_is_a_usage_error() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        with pytest.raises(PortInUseError) as error:
            launch(["sleep", "1"], squatter.getsockname()[1])
    assert error.value.exit_code == 2


def test_wait_until_returns_the_value_or_names_the_condition() -> None:
    assert wait_until(lambda: 42, 0.1, "the answer") == 42
    with pytest.raises(WaitTimedOutError, match=r"gave up after 0\.05 s waiting until never"):
        wait_until(lambda: None, 0.05, "never")
