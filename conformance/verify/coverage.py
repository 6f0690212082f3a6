"""How much of the model a verification reached: actions performed or inferred, records seen.

A random walk alone reaches a small part of the model's states (``forkshare bench --only
coverage`` measures it), so every run also plays scenarios generated for the places where
defects hide (:mod:`~forkshare.conformance.verify.scenarios`). This module counts what the run
reached, for the report and ``--json``: which environment actions were performed, which internal
actions some explanation of the observations used (a respawn, a close of a listener, an exit…),
and how many distinct records (:class:`~forkshare.conformance.verify.abstraction.Abstract`) the
target showed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from forkshare.conformance.verify.abstraction import Abstract
from forkshare.model.actions import ACTIONS
from forkshare.model.table import Kind


@dataclass(slots=True)
class Coverage:
    """What one verification reached (accumulated over its scenarios and walks)."""

    performed: Counter[str] = field(default_factory=Counter)
    """Environment actions performed on the target, by name."""
    inferred: set[str] = field(default_factory=set)
    """Internal actions on some path of the model that explains what was observed."""
    records: set[Abstract] = field(default_factory=set)
    """Distinct records the target showed."""
    cut_short: list[str] = field(default_factory=list)
    """Why random walks ended early: after that step the observations left more model states
    open than the verifier follows (:data:`~forkshare.conformance.verify.machine.MAX_CLOSURE`)."""

    def environment_share(self) -> tuple[int, int]:
        """(environment actions performed, environment actions in the model)."""
        names = [n for n, a in ACTIONS.items() if a.kind is Kind.ENVIRONMENT]
        return sum(1 for n in names if self.performed[n]), len(names)

    def internal_share(self) -> tuple[int, int]:
        """(internal actions inferred, internal actions in the model)."""
        names = [n for n, a in ACTIONS.items() if a.kind is Kind.INTERNAL]
        return sum(1 for n in names if n in self.inferred), len(names)

    def describe(self) -> str:
        """One line for the report."""
        env, env_total = self.environment_share()
        internal, internal_total = self.internal_share()
        line = (
            f"environment actions {env}/{env_total}, internal actions {internal}/"
            f"{internal_total}, distinct observed states {len(self.records)}"
        )
        if self.cut_short:
            line += f", random walks cut short {len(self.cut_short)} ({self.cut_short[0]})"
        return line

    def to_json(self) -> dict[str, object]:
        """For ``--json``."""
        env, env_total = self.environment_share()
        internal, internal_total = self.internal_share()
        return {
            "environment_actions": {"performed": env, "of": env_total},
            "internal_actions": {"inferred": internal, "of": internal_total},
            "performed": dict(sorted(self.performed.items())),
            "inferred": sorted(self.inferred),
            "distinct_observed_states": len(self.records),
            "walks_cut_short": list(self.cut_short),
        }
