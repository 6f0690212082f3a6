"""The known facts (issue item 6) as fixed scenarios, played through the same backend as the
random run. Model pids: the master is 1, its first two workers 2 and 3;
:data:`~forkshare.conformance.verify.target_backend.HOLDER` is the worker registered on the listener.
"""

from __future__ import annotations

from dataclasses import replace

from forkshare.conformance.verify.machine import SETTLE, Step
from forkshare.conformance.verify.profile import Profile
from forkshare.conformance.verify.target_backend import HOLDER
from forkshare.conformance.verify.verify import Result, verify
from forkshare.model.config import Bounds, ParentDeath

LOSE_QUEUED: tuple[Step, ...] = (
    ("start_master", ()),
    ("stop_worker", (2,)),
    ("connect", ()),
    ("connect", ()),
    ("connect", ()),
    ("kill_worker", (2,)),
    SETTLE,
)
"""Stop a worker, queue clients (the reuseport hash sends some to its socket), SIGKILL it."""

ORPHANS_SERVE: tuple[Step, ...] = (
    ("start_master", ()),
    ("kill_master", (1,)),
    ("connect", ()),
    ("send_request", (0,)),
    SETTLE,
)
"""SIGKILL the master, then a client: who serves it?"""

MUTEX_STALL: tuple[Step, ...] = (
    ("start_master", ()),
    ("stop_worker", (HOLDER,)),
    ("connect", ()),
    ("send_request", (0,)),
)
"""SIGSTOP the worker holding the accept mutex, then a client: does anyone accept?"""


def lose_queued(profile: Profile) -> Result:
    """Play :data:`LOSE_QUEUED` against ``profile``."""
    return verify(profile, scenario=LOSE_QUEUED, bounds=Bounds(connections=3, kills=1, stops=1))


def orphans_serve(profile: Profile, claim: ParentDeath) -> Result:
    """Play :data:`ORPHANS_SERVE` against ``profile`` claiming parent-death policy ``claim``."""
    claimed = replace(profile, parent_death=claim)
    return verify(claimed, scenario=ORPHANS_SERVE, bounds=Bounds(connections=1, master_kills=1))


def mutex_stall(profile: Profile) -> Result:
    """Play :data:`MUTEX_STALL` against ``profile``."""
    return verify(profile, scenario=MUTEX_STALL, bounds=Bounds(connections=1, stops=1))
