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


ISSUES: tuple[ModelIssue, ...] = ()
"""Every known defect of the model, by the goal it breaks."""


def issue_for(config: Config, goal: str) -> ModelIssue | None:
    """The known defect that makes ``goal`` fail in ``config``, if any."""
    return next((i for i in ISSUES if i.goal == goal and i.applies(config)), None)
