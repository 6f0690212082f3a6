"""fast_stop_leaves_workers — DEFECTIVE: after a fast stop the workers keep serving.

Base: scm_rights (HUP reload, TERM graceful stop, INT fast stop).

Defect (the only difference from the base): on INT the master does not signal its workers; it
hands its clean-up to a forked child (so that the master "exits fast") and exits at once,
counting on each worker's channel to read EOF (F7). The clean-up child closes the listener but
not the master ends of the workers' channels it inherited, and it lingers for CLEANUP_TIME
seconds: the channels do not read EOF, so the workers keep the listener and keep serving after
the master has exited.

Freedoms taken (DOMAIN §9): the base's — F1-early, F2-early, F3-wait, F5, F7-channel, F8.

Caught as: shutdown_releases_port.
"""

from __future__ import annotations

import os
import signal
import sys
import time

if __package__ in (None, ""):  # run as a file: make ``tests.zoo`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.zoo.scm_rights import FAST, Master, main

CLEANUP_TIME = 30.0


class HandOffMaster(Master):
    """scm_rights's master whose fast stop leaves a clean-up child behind."""

    def handle(self, signum: int) -> None:
        """The defect is in the fast stop only."""
        if signum == FAST:
            self.hand_off_and_exit()
        else:
            super().handle(signum)

    def hand_off_and_exit(self) -> None:
        """Fork the clean-up child (keeping the channels), then exit without a word."""
        assert self.listener is not None
        self.listener.close()
        if os.fork() == 0:
            try:
                signal.set_wakeup_fd(-1)
                time.sleep(CLEANUP_TIME)  # "removing temporary files"
            finally:
                os._exit(0)
        os._exit(0)


if __name__ == "__main__":
    main(HandOffMaster, __doc__)
