"""leaky_helper — DEFECTIVE: a helper process outside the server's tree holds the listener.

Base: select_herd (HUP reload, TERM graceful stop, INT fast stop).

Defect (the only difference from the base): after binding, the master starts a "log shipper"
daemon the classic way — fork, setsid(), fork again, the middle process exits — without closing
the descriptors it does not need (no close-before-exec, no FD_CLOEXEC pass). The shipper is
re-parented (to PID 1 or a subreaper), lives in its own session and process group, and holds
the listening socket. It outlives the server by SHIPPER_LINGER seconds (flushing), so the port
keeps listening after a shutdown; a stop of the server's process group does not reach it.

Freedoms taken (DOMAIN §9): the base's — F1-late, F2-late, F3-wait, F7-polling.

Caught as: no_leaked_listener (also shutdown_releases_port).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

if __package__ in (None, ""):  # run as a file: make ``tests.zoo`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.zoo.select_herd import Master, main

SHIPPER_LINGER = 5.0  # seconds the shipper stays after the master is gone
SHIPPER_LIFETIME = 120.0  # a hard bound, so that a forgotten shipper cannot live for ever


def ship_logs(master_pid: int) -> None:
    """The shipper's loop: 'ship' until the master has been gone for SHIPPER_LINGER."""
    started = time.monotonic()
    gone_since: float | None = None
    while time.monotonic() - started < SHIPPER_LIFETIME:
        try:
            os.kill(master_pid, 0)
        except ProcessLookupError:
            gone_since = gone_since or time.monotonic()
            if time.monotonic() - gone_since > SHIPPER_LINGER:
                return
        time.sleep(0.2)


class LeakyMaster(Master):
    """select_herd's master that daemonizes a helper with every descriptor it has."""

    def start(self) -> None:
        """Bind, fork the workers, then start the shipper."""
        super().start()
        self.start_log_shipper()

    def start_log_shipper(self) -> None:
        """The defect: a double-forked daemon that keeps the listener."""
        master_pid = os.getpid()
        middle = os.fork()
        if middle == 0:
            try:
                signal.set_wakeup_fd(-1)
                for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                    signal.signal(signum, signal.SIG_DFL)
                os.setsid()
                if os.fork() == 0:
                    ship_logs(master_pid)
            finally:
                os._exit(0)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(middle, 0)


if __name__ == "__main__":
    main(LeakyMaster, __doc__)
