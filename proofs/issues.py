"""Known defects of the model that the unbounded proofs found, kept until model/ is fixed.

The explorer checks the model within budgets (by default one start and no master kill); the
proofs do not. Where the proofs show an invariant or a progress fact failing for a reason that is
a defect of the *model* (not of the encoding), the defect is listed here: its obligations are
reported as ``known-issue`` instead of failing the run, the invariant is not assumed when the
others are proved, and a bounded search must find a shortest trace to it that replays through the
Python model (so an entry cannot hide an encoding bug). When the model is fixed, the search finds
nothing and the entry is reported ``resolved``: delete it.
"""

from __future__ import annotations

from dataclasses import dataclass

from forkshare.model.config import Config, Mode


@dataclass(frozen=True, slots=True)
class ModelIssue:
    """A defect of the model: where it shows, what fails, and the fix model/ needs."""

    name: str
    modes: frozenset[Mode]
    goal: str
    """The invariant (or progress fact) that fails."""
    depth: int
    """How many steps the shortest trace to it takes (bounds the confirming search)."""
    summary: str
    fix: str

    def applies(self, config: Config) -> bool:
        """True when this defect shows in ``config``."""
        return config.mode in self.modes


ISSUES: tuple[ModelIssue, ...] = (
    ModelIssue(
        "orphan-leaves-its-lock",
        frozenset({Mode.MUTEX}),
        "mutex_holder_is_alive",
        5,
        "SIGKILL the master while a worker holds the accept mutex: the worker, now an orphan, "
        "exits and init reaps it at once (kernel.exit_process removes it), so no master ever "
        "force-unlocks the lock word, which keeps a pid nobody has.",
        "model/kernel.py exit_process (or actions.start_master): the lock word lives in the "
        "master's shared memory; a new master starts with a fresh one (mutex=0), and an "
        "orphan's exit should release the lock word it holds — or scope the invariant to states "
        "with a live master.",
    ),
    ModelIssue(
        "zombie-holder-never-reaped",
        frozenset({Mode.MUTEX}),
        "dead_holder_is_reaped",
        5,
        "SIGKILL the mutex holder, then SIGKILL the master before it reaps: the zombie is "
        "reparented to init but stays in the process table forever (nothing reaps a zombie "
        "whose parent is 0), with its pid in the lock word: after a restart no worker can ever "
        "acquire the mutex (the restarted server deadlocks).",
        "model/kernel.py exit_process: children reparented to init that are already zombies "
        "must be removed (init reaps them), as exit_process already does for the exiting "
        "process itself.",
    ),
    ModelIssue(
        "reuseport-restart-beside-orphans",
        frozenset({Mode.REUSEPORT}),
        "no_queued_connection_lost",
        6,
        "SIGKILL the master, then start a new one while the orphans still hold the old "
        "SO_REUSEPORT sockets: bind succeeds (both set SO_REUSEPORT), the kernel hashes new "
        "connections onto the orphans' sockets too, and when the frozen orphans exit those "
        "queues are reset while the new master runs.",
        "a modelling decision: either start_master in reuseport mode conflicts with sockets "
        "held by orphans (the real fix servers use: wait for them, as gunicorn's and nginx's "
        "pidfile checks do), or the invariants exempt sockets no live master created.",
    ),
    ModelIssue(
        "reuseport-restart-closes-old-sockets",
        frozenset({Mode.REUSEPORT}),
        "listeners_keep_identity",
        5,
        "The same restart beside orphans: the orphans' sockets were created by a master and "
        "close while the new master runs, which the invariant counts as an identity change.",
        "as for reuseport-restart-beside-orphans.",
    ),
)
"""Every known defect of the model, by the goal it breaks."""


def issue_for(config: Config, goal: str) -> ModelIssue | None:
    """The known defect that makes ``goal`` fail in ``config``, if any."""
    return next((i for i in ISSUES if i.goal == goal and i.applies(config)), None)
