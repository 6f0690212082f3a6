"""graceful_drops — DEFECTIVE: a graceful stop drops the requests the workers have in hand.

Base: reexec_master (HUP reload by re-exec, QUIT graceful stop, TERM fast stop).

Defect (the only difference from the base): a worker exits the instant it gets QUIT, instead of
finishing the connection in hand. A client whose connection was accepted (its request being read
or answered) sees its connection closed without a response, on a graceful stop and on a reload
(the reload QUITs the old generation).

Freedoms taken (DOMAIN §9): the base's — F1-early, F2-late, F4-reexec, K20, F7-pdeathsig.

Caught as: requests_in_hand_are_answered.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a file: make ``tests.zoo`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.zoo.reexec_master import Master, Worker, main


class ImpatientWorker(Worker):
    """A reexec_master worker that treats QUIT like TERM."""

    def on_quit(self, _signum: int, _frame: object) -> None:
        """The defect: exit now, whatever is in hand."""
        os._exit(0)


class DroppingMaster(Master):
    """reexec_master's master with impatient workers."""

    WORKER = ImpatientWorker


if __name__ == "__main__":
    main(DroppingMaster, __doc__)
