"""Bounded searches: every unsafe variant refuted, every action witnessed, every known model
issue confirmed — each by a shortest trace that z3 finds and the Python model replays.

Discussion:
    *Why replay.* A trace z3 finds is a trace of the encoding. Replaying it through the Python
    model (:func:`forkshare.proofs.bmc.replay`) and checking the Python predicate at its end makes
    each refutation a round trip: the same unsafe design fails the same invariant in the model
    the explorer, the tests and the verifier run.

    *A refutation searches one slot, within the variant's budgets.* Each variant carries the
    budgets its counterexample needs (``Variant.bounds``); an environment action whose budget
    is 0 is left out of the unrolled step, at most one step takes an action whose budget is 1,
    and the universes are as large as the budgets let a run grow
    (:func:`~forkshare.proofs.bmc.sizes_for`). Every design fails already with one worker
    slot. The alternative, every action over the largest universes, takes seconds for the
    deepest counterexample (a graceful stop that drops a request in hand, 8 steps) where this
    takes a fraction of one; a trace found is a trace either way, replayed in Python without
    budgets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from forkshare.model.actions import ACTIONS
from forkshare.model.config import Config, Mode
from forkshare.model.invariants import INVARIANTS
from forkshare.model.state import System
from forkshare.model.variants import VARIANTS
from forkshare.proofs.bmc import SIZES, Goal, Trace, cover, search, sizes_for
from forkshare.proofs.claims import CLAIMS
from forkshare.proofs.encoding import Formula, Locals, Vocab, conj, exists, neg
from forkshare.proofs.issues import ISSUES, ModelIssue
from forkshare.proofs.progress import PROGRESS
from forkshare.proofs.report import Kind, Record, Result

SEARCH_TIMEOUT_MS = 5000
ISSUE_SIZES = {**SIZES, "gen": 1}
"""The known model issues all show in the first generation (no reload on the way)."""
MAX_DEPTH = 7
"""How deep a witness search goes (every action fires within 5 steps of the initial state)."""
REFUTATION_DEPTH = 8
"""How deep a refutation goes: a graceful stop that drops a request in hand takes 8 steps
(start, fork, connect, accept, request, QUIT, the worker acts on it, exits)."""
WITNESS_SIZES = {"proc": 2, "sock": 1, "conn": 1, "gen": 2}
"""One slot needs at most two processes at a time (a master and a worker, helper or new
binary) and one socket; a reload needs a second generation."""


@dataclass(frozen=True, slots=True)
class WitnessTarget:
    """A configuration in which to look for witnesses, and the actions it is there for."""

    label: str
    config: Config
    actions: frozenset[str] = frozenset()
    """The actions only this configuration can fire (empty: every other action)."""
    sizes: Mapping[str, int] = field(default_factory=lambda: WITNESS_SIZES)
    """The universes of its searches."""


ONE_SLOT = Config(workers=1)
"""Witnesses and issue traces need only one worker slot (the shortest traces are shorter)."""

WITNESS_TARGETS: tuple[WitnessTarget, ...] = (
    WitnessTarget("exclusive", replace(ONE_SLOT, mode=Mode.EXCLUSIVE)),
    WitnessTarget(
        "mutex",
        replace(ONE_SLOT, mode=Mode.MUTEX),
        frozenset({"acquire_mutex", "release_mutex"}),
    ),
    WitnessTarget("passfd", replace(ONE_SLOT, mode=Mode.PASSFD), frozenset({"pass_connection"})),
    WitnessTarget(
        "rebind-on-reload",
        VARIANTS["rebind-on-reload"].apply(ONE_SLOT),
        frozenset({"rebind_listeners"}),
        {**WITNESS_SIZES, "sock": 2},
    ),
)
"""Where witnesses are looked for: the accept mutex exists only in mutex mode, handing a
connection over only in passfd mode, rebinding only in the rebind design; every other action is
witnessed in exclusive mode. A test requires a witness for every action, so this table cannot go
stale silently."""


def _violates(name: str) -> Goal:
    return lambda config, v: neg(CLAIMS[name](config, v))


def _breaks_progress(name: str) -> Goal:
    fact = PROGRESS[name]

    def goal(config: Config, v: Vocab) -> Formula:
        local = Locals(f"goal!{name}!")
        premise, conclusion = fact.build(config, v, local)
        hidden = [term for term, _ in local.loose()]
        body = conj(premise, *local.side, neg(conclusion))
        return exists(hidden, body) if hidden else body

    return goal


def _fails_in_python(config: Config, goal: str, state: System) -> bool:
    if goal in INVARIANTS:
        return not INVARIANTS[goal].holds(config, state)
    return PROGRESS[goal].violated(config, state)


@dataclass(frozen=True, slots=True)
class Found:
    """What a bounded search is for: its record's kind, label and the goal that must fail."""

    kind: Kind
    target: str
    label: str
    goal: str
    config: Config
    headline: str


def _record(found: Found, trace: Trace | None, depth: int) -> Record:
    """FOUND when the replayed trace also breaks the goal in Python; MISSING otherwise."""
    if trace is None:
        text = f"no trace within {depth} steps"
        return Record(found.kind, found.target, found.label, found.goal, Result.MISSING, 0.0, text)
    steps = "\n".join(trace.numbered())
    if not _fails_in_python(found.config, found.goal, trace.steps[-1].state):
        text = f"the replayed trace does not break {found.goal} in Python:\n{steps}"
        return Record(
            found.kind, found.target, found.label, found.goal, Result.MISSING, trace.ms, text
        )
    text = f"{found.headline}\n{steps}"
    return Record(
        found.kind, found.target, found.label, found.goal, Result.FOUND, trace.slowest_ms, text
    )


def refute_variant(name: str) -> Record:
    """The shortest trace on which unsafe variant ``name`` violates its expected invariant,
    with one worker slot (the design fails already there) and the environment actions the
    variant's budgets allow, over universes those budgets need."""
    variant = VARIANTS[name]
    config = variant.apply(ONE_SLOT)
    headline = f"{variant.expected} fails ({variant.seen_in}); replayed in the Python model:"
    found = Found(Kind.REFUTATION, name, "", variant.expected, config, headline)
    goal = _violates(variant.expected)
    trace = search(
        config,
        goal,
        max_depth=REFUTATION_DEPTH,
        timeout_ms=SEARCH_TIMEOUT_MS,
        sizes=sizes_for(config, variant.bounds),
        budgets=variant.bounds,
    )
    return _record(found, trace, REFUTATION_DEPTH)


def confirm_issue(issue: ModelIssue) -> Record:
    """The shortest trace to a known model issue, in the safe configuration of its first mode;
    RESOLVED when there is none (the model was fixed: drop the entry)."""
    mode = min(issue.modes, key=lambda m: m.value)
    config = replace(ONE_SLOT, mode=mode)
    headline = f"{issue.name}: {issue.summary}\nfix: {issue.fix}"
    found = Found(Kind.MODEL_ISSUE, mode.value, issue.name, issue.goal, config, headline)
    goal = _violates(issue.goal) if issue.goal in CLAIMS else _breaks_progress(issue.goal)
    trace = search(
        config, goal, max_depth=issue.depth, timeout_ms=SEARCH_TIMEOUT_MS, sizes=ISSUE_SIZES
    )
    if trace is None:
        text = f"{issue.name} no longer shows: remove it from proofs/issues.py"
        return Record(found.kind, found.target, issue.name, issue.goal, Result.RESOLVED, 0.0, text)
    return _record(found, trace, issue.depth)


def witness_plan(actions: Iterable[str] = ACTIONS) -> dict[str, str]:
    """Action → the label of the configuration its witness is looked for in."""
    general = next(t.label for t in WITNESS_TARGETS if not t.actions)
    return {
        action: next((t.label for t in WITNESS_TARGETS if action in t.actions), general)
        for action in actions
    }


def witness_actions_in(label: str, actions: Iterable[str] = ACTIONS) -> list[Record]:
    """Witnesses, in configuration ``label``, for the actions the plan gives it."""
    target = next(t for t in WITNESS_TARGETS if t.label == label)
    plan = witness_plan(actions)
    mine = frozenset(a for a, where in plan.items() if where == label)
    if not mine:
        return []
    found = cover(
        target.config, mine, max_depth=MAX_DEPTH, timeout_ms=SEARCH_TIMEOUT_MS, sizes=target.sizes
    )
    records = [
        Record(Kind.WITNESS, label, a, "", Result.FOUND, t.slowest_ms, "\n".join(t.numbered()))
        for a, t in sorted(found.items())
    ]
    missing = f"no trace fires it within {MAX_DEPTH} steps"
    records += [
        Record(Kind.WITNESS, label, a, "", Result.MISSING, 0.0, missing)
        for a in sorted(mine - found.keys())
    ]
    return records


def witness_actions(actions: Iterable[str] = ACTIONS) -> list[Record]:
    """For every action, a replayed trace from the initial state on which it fires."""
    wanted = list(actions)
    return [r for t in WITNESS_TARGETS for r in witness_actions_in(t.label, wanted)]


def confirm_issues() -> list[Record]:
    """A replayed trace for every known model issue."""
    return [confirm_issue(issue) for issue in ISSUES]
