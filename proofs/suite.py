"""The whole proof suite: every obligation, witness, progress fact, refutation and issue trace.

:func:`run_proof_suite` is what ``forkshare prove`` and ``forkshare bench`` call. The work is cut
into independent tasks (one per group of safe configurations, per witness configuration, per
unsafe variant, per known model issue, and one for the freedoms' witnesses) that run in worker
processes when ``jobs`` > 1: z3 is single-threaded, and each task builds its own formulas, so
nothing is shared but the records that come back. The configurations of one group are proved in
one task so that the queries they share are solved once
(:class:`~forkshare.proofs.obligations.ProvedQueries`).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from forkshare.model.actions import ACTIONS
from forkshare.model.config import Mode
from forkshare.model.freedoms import FREEDOMS
from forkshare.model.invariants import INVARIANTS
from forkshare.model.variants import VARIANTS
from forkshare.proofs.errors import UnknownNameError
from forkshare.proofs.freedoms import check_freedom
from forkshare.proofs.issues import ISSUES
from forkshare.proofs.lemmas import LEMMAS
from forkshare.proofs.obligations import SAFE_TARGETS, ProvedQueries, Prover
from forkshare.proofs.progress import PROGRESS
from forkshare.proofs.report import Kind, Record, SuiteReport
from forkshare.proofs.searches import (
    WITNESS_TARGETS,
    confirm_issue,
    refute_variant,
    witness_actions_in,
)


def valid_names() -> dict[str, list[str]]:
    """Every name ``--only`` accepts, by what it names."""
    return {
        "actions": list(ACTIONS),
        "invariants": list(INVARIANTS),
        "lemmas": list(LEMMAS),
        "progress facts": list(PROGRESS),
        "unsafe variants": list(VARIANTS),
        "configurations": [t.label for t in SAFE_TARGETS],
        "model issues": [i.name for i in ISSUES],
        "freedoms": list(FREEDOMS),
    }


@dataclass(frozen=True, slots=True)
class Selection:
    """Which obligations ``--only NAME`` keeps (all of them when ``name`` is None)."""

    name: str | None = None

    def __post_init__(self) -> None:
        if self.name is None:
            return
        names = valid_names()
        if not any(self.name in group for group in names.values()):
            listing = "; ".join(f"{k}: {', '.join(v)}" for k, v in names.items())
            raise UnknownNameError(f"--only {self.name!r} names nothing. Valid names are {listing}")

    def __call__(self, kind: Kind, target: str, action: str, goal: str) -> bool:
        """Keep this obligation?"""
        return self.name is None or self.name in (target, action, goal)

    def wants_target(self, label: str) -> bool:
        """Any init, consecution or progress obligation of the safe mode ``label``?"""
        if self.name is None:
            return True
        if self.name in VARIANTS or self.name in FREEDOMS or self.name in [i.name for i in ISSUES]:
            return False
        labels = [t.label for t in SAFE_TARGETS]
        return self.name not in labels or self.name == label

    def wants_variant(self, name: str, expected: str) -> bool:
        """The refutation of this unsafe variant?"""
        return self.name in (None, name, expected)

    def wants_issue(self, name: str, goal: str, modes: frozenset[Mode]) -> bool:
        """The confirmation of this model issue?"""
        return self.name in (None, name, goal) or self.name in [m.value for m in modes]

    def wants_witness(self, action: str) -> bool:
        """The witness of this action?"""
        return self.name in (None, action)

    def wants_freedom(self, fid: str, steps: list[str]) -> bool:
        """The check of this freedom's witness (named by its id, or by an action it takes)?"""
        return self.name is None or self.name == fid or self.name in steps


Task = Callable[[], list[Record]]


def _prove(group: str, only: str | None) -> list[Record]:
    selection = Selection(only)
    known = ProvedQueries()
    records: list[Record] = []
    for target in SAFE_TARGETS:
        if target.task != group or not selection.wants_target(target.label):
            continue
        prover = Prover(target, selected=selection, known=known)
        records += prover.check_init() + prover.check_transitions() + prover.check_progress()
    return records


def _freedoms(only: str | None) -> list[Record]:
    selection = Selection(only)
    return [check_freedom(fid) for fid in FREEDOMS if selection.wants_freedom(fid, _steps(fid))]


def _steps(fid: str) -> list[str]:
    return [name for name, _ in FREEDOMS[fid].witness.steps]


def _witness(label: str, only: str | None) -> list[Record]:
    selection = Selection(only)
    wanted = [a for a in ACTIONS if selection.wants_witness(a)]
    return witness_actions_in(label, wanted)


def _refute(name: str) -> list[Record]:
    return [refute_variant(name)]


def _issue(name: str) -> list[Record]:
    return [confirm_issue(next(i for i in ISSUES if i.name == name))]


def _tasks(selection: Selection) -> list[tuple[Callable[..., list[Record]], tuple[object, ...]]]:
    """The independent pieces of work, the longest first (so that two workers stay busy): the
    proofs of each group of configurations, then the searches and the freedoms' runs."""
    only = selection.name
    tasks: list[tuple[Callable[..., list[Record]], tuple[object, ...]]] = []
    groups = dict.fromkeys(t.task for t in SAFE_TARGETS if selection.wants_target(t.label))
    tasks += [(_prove, (group, only)) for group in groups]
    tasks += [(_witness, (t.label, only)) for t in WITNESS_TARGETS if _any_witness(selection)]
    tasks += [
        (_refute, (n,)) for n, v in VARIANTS.items() if selection.wants_variant(n, v.expected)
    ]
    tasks += [(_issue, (i.name,)) for i in ISSUES if selection.wants_issue(i.name, i.goal, i.modes)]
    if any(selection.wants_freedom(fid, _steps(fid)) for fid in FREEDOMS):
        tasks.append((_freedoms, (only,)))
    return tasks


def _any_witness(selection: Selection) -> bool:
    return any(selection.wants_witness(a) for a in ACTIONS)


def run_proof_suite(only: str | None = None, *, jobs: int | None = None) -> SuiteReport:
    """Run every obligation (or those ``only`` names) and return the records with the wall time.

    Args:
        only: an action, invariant, lemma, progress fact, unsafe variant, configuration,
            model issue or freedom (F1…, K19, K20).
        jobs: worker processes (default: the CPUs available, at most 4; 1 runs in-process).

    Raises:
        UnknownNameError: ``only`` names nothing (the message lists every valid name).
    """
    selection = Selection(only)
    start = time.perf_counter()
    tasks = _tasks(selection)
    workers = jobs or min(4, len(os.sched_getaffinity(0)))
    if workers <= 1:
        batches = [task(*args) for task, args in tasks]
    else:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [pool.submit(task, *args) for task, args in tasks]
            batches = [future.result() for future in futures]
    records = [record for batch in batches for record in batch]
    return SuiteReport(_ordered(records), time.perf_counter() - start)


_ORDER = [
    Kind.INIT,
    Kind.CONSECUTION,
    Kind.PROGRESS,
    Kind.WITNESS,
    Kind.FREEDOM,
    Kind.REFUTATION,
    Kind.MODEL_ISSUE,
]


def _ordered(records: list[Record]) -> list[Record]:
    targets = [t.label for t in SAFE_TARGETS]
    return sorted(
        records,
        key=lambda r: (
            _ORDER.index(r.kind),
            targets.index(r.target) if r.target in targets else len(targets),
        ),
    )
