"""Records of what the proof suite checked: one per obligation, and the suite's totals.

A :class:`Record` is what ``forkshare prove --json`` prints, one per line of the table: the kind of
obligation, the action and the invariant (or lemma, progress fact) it is about, the result and the
solver time. The ``detail`` carries the decoded counterexample or trace, never a bare ``sat``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    """What an obligation establishes."""

    INIT = "init"
    """The initial state satisfies the invariant."""
    CONSECUTION = "consecution"
    """Every step of the action from a state satisfying all invariants preserves this one."""
    WITNESS = "witness"
    """The action can fire from a reachable state (the specification is not vacuous)."""
    PROGRESS = "progress"
    """An enabledness fact holds in every state satisfying the invariants."""
    REFUTATION = "refutation"
    """An unsafe variant violates its invariant: a shortest trace, replayed in Python."""
    MODEL_ISSUE = "model-issue"
    """A known defect of the model is reachable: a shortest trace, replayed in Python."""
    FREEDOM = "freedom"
    """A freedom's witness trace (:mod:`forkshare.model.freedoms`) is a run of the z3
    transition relation, step by step from the z3 initial state: the specification the proofs
    are about allows the behaviour."""


class Basis(StrEnum):
    """How a proved obligation was established."""

    SOLVER = "solver"
    """z3 answered ``unsat`` to the query."""
    FRAME = "frame"
    """The action modifies no symbol the goal reads: its post-state formula is its pre-state
    formula, a hypothesis (no query)."""
    IDENTITY = "identity"
    """The very same z3 query (the same hash-consed term) was answered ``unsat`` for another
    configuration in this run."""


class Result(StrEnum):
    """How an obligation ended."""

    PROVED = "proved"
    FAILED = "failed"
    """A counterexample: to induction (consecution), or a state (init, progress)."""
    UNKNOWN = "unknown"
    """z3 gave up (timeout): never counted as proved."""
    KNOWN_ISSUE = "known-issue"
    """Fails because of a defect of the model listed in :mod:`forkshare.proofs.issues`."""
    RESOLVED = "resolved"
    """A listed model defect no longer shows: remove it from the list."""
    FOUND = "found"
    """The trace a witness, refutation or issue confirmation looks for exists and replays."""
    MISSING = "missing"
    """No such trace within the bound."""


OK_RESULTS = frozenset({Result.PROVED, Result.KNOWN_ISSUE, Result.FOUND})


@dataclass(frozen=True, slots=True)
class Record:
    """One obligation and its outcome."""

    kind: Kind
    target: str
    """The configuration: a mode (``exclusive``) or an unsafe variant (``no-force-unlock``)."""
    action: str
    invariant: str
    result: Result
    ms: float
    """Solver time: of the checks an obligation needed (a conjunction is refuted clause by
    clause), or of the check that found a trace (the deepest)."""
    detail: str = ""
    basis: Basis | None = None
    """How a proved init, consecution or progress obligation was established."""

    @property
    def ok(self) -> bool:
        """True when the obligation does not fail the suite."""
        return self.result in OK_RESULTS

    def to_json(self) -> dict[str, object]:
        """The record as ``forkshare prove --json`` prints it."""
        return {
            "kind": self.kind.value,
            "target": self.target,
            "action": self.action,
            "invariant": self.invariant,
            "result": self.result.value,
            "ms": round(self.ms, 3),
            "detail": self.detail,
            "basis": self.basis.value if self.basis else None,
        }


@dataclass(slots=True)
class SuiteReport:
    """Every record of one run, and its wall time."""

    records: list[Record] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every obligation is proved (or a known model issue) and every search found
        its trace."""
        return all(r.ok for r in self.records)

    @property
    def slowest(self) -> Record | None:
        """The record with the longest single solver time."""
        return max(self.records, key=lambda r: r.ms, default=None)

    def totals(self) -> Counter[tuple[str, str]]:
        """(kind, result) → how many."""
        return Counter((r.kind.value, r.result.value) for r in self.records)

    def bases(self) -> Counter[tuple[str, str]]:
        """(kind, basis) → how many proved obligations were established that way."""
        return Counter((r.kind.value, r.basis.value) for r in self.records if r.basis)

    def failed(self) -> list[Record]:
        """The records that fail the suite."""
        return [r for r in self.records if not r.ok]

    @property
    def failures(self) -> int:
        """How many records fail the suite."""
        return len(self.failed())

    @property
    def count(self) -> int:
        """How many obligations were checked."""
        return len(self.records)

    @property
    def seconds(self) -> float:
        """The wall time (``forkshare bench`` reads it under this name)."""
        return self.wall_seconds

    @property
    def slowest_ms(self) -> float:
        """The longest single solver time, in milliseconds."""
        return self.slowest.ms if self.slowest else 0.0
