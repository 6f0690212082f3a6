"""Proof obligations in the shape of mypyvy's ``check_init`` / ``check_transitions``.

For one safe configuration (a :class:`Target`), the *goals* are the invariants that apply to it
and the strengthening lemmas. Init: the initial state satisfies every goal. Consecution: for every
(action, goal) pair, the goals before ∧ the action ⇒ the goal after. Progress: every enabledness
fact of :mod:`forkshare.proofs.progress` holds wherever the goals do. Each check runs in its own
solver frame, released in ``finally`` (:meth:`~forkshare.proofs.encoding.Solver.frame`), with a
timeout; a failure is decoded into named states, never reported as a bare ``sat``.

Discussion:
    *One solver per action, one frame per goal.* The hypotheses and the transition are asserted
    once per action; each goal's negation is pushed, checked and popped. A goal that is a
    conjunction is refuted clause by clause (it fails iff one clause can fail), which keeps each
    check small: z3's quantifier instantiation is much faster on one clause than on the
    disjunction of all their negations.

    *Goals the action cannot touch.* A post-state shares every symbol the action does not modify
    with the pre-state (mypyvy's ``modifies``). When a clause of a goal mentions none of the
    modified symbols, its post-state formula is the very same z3 term as its pre-state formula,
    which is a hypothesis: it holds by that identity and is not sent to z3. When no clause of a
    goal is touched, the obligation is recorded as proved "by frame" without a solver call.
    Changing what an action modifies changes the terms, so the shortcut can never outlive its
    reason.

    *Queries proved twice.* Configurations that differ in a freedom's pin (TCP_DEFER_ACCEPT on
    or off, listeners inherited or sent) or in the wait primitive (blocking accept and
    EPOLLEXCLUSIVE wake one waiter alike) give most actions the very same transition formula
    and the same goals. z3 hash-conses its terms, so such an obligation builds the identical
    query term; :class:`ProvedQueries` remembers every query answered ``unsat`` in this
    process, and the second configuration's obligation is recorded as proved "by identity"
    with the configuration that proved it. Only an identical term counts, so a change to either
    configuration's formulas sends the query to z3 again.

    *Known model issues.* A goal listed in :mod:`forkshare.proofs.issues` for a configuration is
    not assumed when the other goals are proved there (a false hypothesis would prove anything);
    its own obligations assume it, and a failure is reported as ``known-issue``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from forkshare.model.actions import ACTIONS
from forkshare.model.config import Config, Mode, ParentDeath
from forkshare.model.invariants import INVARIANTS
from forkshare.proofs.bmc import initial
from forkshare.proofs.claims import CLAIMS
from forkshare.proofs.encoding import (
    Formula,
    Locals,
    Model,
    Outcome,
    Pair,
    Solver,
    Term,
    Vocab,
    conjuncts,
    is_false,
    neg,
    renaming,
    simplify,
    static_axioms,
    substitute_symbols,
    symbols_of,
)
from forkshare.proofs.issues import issue_for
from forkshare.proofs.lemmas import LEMMAS, Lemma
from forkshare.proofs.progress import PROGRESS, ProgressFact
from forkshare.proofs.report import Basis, Kind, Record, Result
from forkshare.proofs.structure import decode, describe, naming
from forkshare.proofs.transitions import arguments, effect, transition

TIMEOUT_MS = 2000
"""Per-check timeout: a check that runs out answers ``unknown``, which never counts as proved."""
RETRY_TIMEOUT_MS = 10_000
"""A check that runs out of time is asked once more with this budget before it counts as
``unknown``: every check here takes milliseconds, and a first timeout has so far been the
machine (another process on the core) rather than the query. The time of both is recorded."""

Goal = Callable[[Config, Vocab], Formula]
Selected = Callable[[Kind, str, str, str], bool]
"""``(kind, target, action, goal)`` → run this obligation?"""


def everything(kind: Kind, target: str, action: str, goal: str) -> bool:
    """Select every obligation."""
    return True


@dataclass(frozen=True, slots=True)
class Target:
    """A configuration the invariants are proved for, by a short label."""

    label: str
    config: Config
    group: str = ""
    """Targets of one group are proved in one process, one after another, so that a query
    they share is solved once (see Discussion); empty: a group of its own."""

    @property
    def task(self) -> str:
        """The group this target is proved in."""
        return self.group or self.label


SAFE_TARGETS: tuple[Target, ...] = (
    Target("blocking", Config(mode=Mode.BLOCKING), "wake-one"),
    Target("exclusive", Config(mode=Mode.EXCLUSIVE), "wake-one"),
    Target(
        "exclusive-deferred-sent",
        Config(mode=Mode.EXCLUSIVE, defer_accept=True, workers_receive_listeners=True),
        "wake-one",
    ),
    Target(
        "exclusive-queued-inherited",
        Config(mode=Mode.EXCLUSIVE, defer_accept=False, workers_receive_listeners=False),
        "wake-one",
    ),
    Target("poll", Config(mode=Mode.POLL)),
    Target("mutex", Config(mode=Mode.MUTEX)),
    Target(
        "mutex-orphans-serve",
        Config(mode=Mode.MUTEX, parent_death=ParentDeath.ORPHANS_SERVE),
        "mutex-orphans",
    ),
    Target(
        "mutex-orphans-poll-getppid",
        Config(mode=Mode.MUTEX, parent_death_bound=15.0),
        "mutex-orphans",
    ),
    Target("reuseport", Config(mode=Mode.REUSEPORT), "reuseport"),
    Target(
        "reuseport-own-clone",
        Config(mode=Mode.REUSEPORT, workers_keep_all_clones=False),
        "reuseport",
    ),
    Target("passfd", Config(mode=Mode.PASSFD)),
)
"""One safe configuration per mode with the default policies (force-unlock, respawn, no
rebinding, master-created sockets, workers that notice their master's death at once, every
reuseport clone kept) and every freedom left open (a connection may be held back or not, a
shared-mode worker may inherit the listener or be sent it); and the pins and policies a
property could depend on: TCP_DEFER_ACCEPT and SCM_RIGHTS pinned both ways, orphans that keep
serving (nginx) and orphans that notice late (a getppid() poll, bound > 0), in mutex mode (an
orphan that may accept takes the accept mutex); and reuseport workers that close the other
slots' clones (the reference server's). ``tests/proofs`` proves both parent-death policies in
every mode (slow); this table is what ``forkshare prove`` runs within its time budget."""


def goals_for(config: Config, lemmas: Mapping[str, Lemma] = LEMMAS) -> dict[str, Goal]:
    """The invariants that apply to ``config``, then the lemmas that do."""
    found: dict[str, Goal] = {
        name: CLAIMS[name] for name, inv in INVARIANTS.items() if inv.applies(config)
    }
    found |= {name: lemma.formula for name, lemma in lemmas.items() if lemma.applies(config)}
    return found


@dataclass(frozen=True, slots=True)
class Refutation:
    """The outcome of refuting a goal clause by clause."""

    verdict: str
    ms: float
    model: Model | None


@dataclass(slots=True)
class ProvedQueries:
    """Every query answered ``unsat`` in this process, by the z3 terms it is made of (see
    Discussion): the hypotheses, the step, and the clauses refuted."""

    proved: dict[tuple[int, ...], tuple[tuple[Formula, ...], str]] = field(default_factory=dict)
    """Term ids → the terms (kept alive, so no id is reused while it is here) and who proved
    them."""

    def prover_of(self, parts: Sequence[Formula]) -> str | None:
        """The label of the configuration that proved the query made of these very terms."""
        found = self.proved.get(tuple(part.get_id() for part in parts))
        return None if found is None else found[1]

    def remember(self, parts: Sequence[Formula], label: str) -> None:
        """The query made of ``parts`` was answered ``unsat`` for ``label``."""
        self.proved.setdefault(tuple(part.get_id() for part in parts), (tuple(parts), label))


class Prover:
    """The init, consecution and progress obligations of one target."""

    def __init__(
        self,
        target: Target,
        *,
        lemmas: Mapping[str, Lemma] = LEMMAS,
        timeout_ms: int = TIMEOUT_MS,
        selected: Selected = everything,
        known: ProvedQueries | None = None,
        retry_timeout_ms: int | None = RETRY_TIMEOUT_MS,
    ) -> None:
        self.target = target
        self.config = target.config
        self.timeout_ms = timeout_ms
        self.retry_timeout_ms = retry_timeout_ms
        """The budget of a check asked again after a timeout (None: not asked again)."""
        self.selected = selected
        self.known = known if known is not None else ProvedQueries()
        self.pre = Vocab.named("")
        self.goals = goals_for(self.config, lemmas)
        self.at_pre = {name: goal(self.config, self.pre) for name, goal in self.goals.items()}
        self.clauses = {
            name: [(clause, symbols_of(clause)) for clause in conjuncts(f)]
            for name, f in self.at_pre.items()
        }
        """Goal → its top-level clauses, each with the state symbols it mentions (they have the
        table's names here)."""
        self.assumed = [f for n, f in self.at_pre.items() if issue_for(self.config, n) is None]
        self.axioms = static_axioms()
        self._solver: Solver | None = None

    def check_init(self) -> list[Record]:
        """The initial state satisfies every goal."""
        records = []
        start = initial(self.pre)
        solver = Solver(self.timeout_ms)
        solver.add(*self.axioms, start)
        for name, formula in self.at_pre.items():
            if not self.selected(Kind.INIT, self.target.label, "", name):
                continue
            earlier = self.known.prover_of([start, formula])
            if earlier is not None:
                records.append(self._by_identity(Kind.INIT, "", name, earlier))
                continue
            refutation = _refute(solver, conjuncts(formula), (), self.retry_timeout_ms)
            detail = ""
            if refutation.model is not None:
                state = decode(refutation.model, self.pre, naming(refutation.model, [self.pre]))
                detail = f"the initial state violates {name}: {describe(state)}"
            elif refutation.verdict == "unsat":
                self.known.remember([start, formula], self.target.label)
            records.append(self._record(Kind.INIT, "", name, refutation, detail))
        return records

    def check_transitions(self, actions: Iterable[str] = ACTIONS) -> list[Record]:
        """Every action preserves every goal (from states satisfying all of them)."""
        return [record for name in actions for record in self.check_action(name)]

    def check_action(self, name: str) -> list[Record]:
        """Consecution of every goal under action ``name``."""
        wanted = [
            g for g in self.goals if self.selected(Kind.CONSECUTION, self.target.label, name, g)
        ]
        if not wanted:
            return []
        local = Locals(f"{name}!")
        args = arguments(name, local)
        step = effect(self.config, name, self.pre, args, local)
        post = self.pre.primed(step.updates, "'")
        solver = Solver(self.timeout_ms)
        formula = transition(step, self.pre, post, local)
        solver.add(*self.axioms, *self.assumed, formula)
        changed = frozenset(step.updates)
        renamed = dict(zip(sorted(changed), renaming(self.pre, post, changed), strict=True))
        context = _Context(solver, name, args, post, changed, formula, renamed)
        return [self._consecution(context, goal) for goal in wanted]

    def _hypotheses(self) -> Solver:
        """The solver holding the axioms and the assumed goals, made once: each action's
        checks run in a frame of it, so the hypotheses are internalised once per target."""
        if self._solver is None:
            self._solver = Solver(self.timeout_ms)
            self._solver.add(*self.axioms, *self.assumed)
        return self._solver

    def _consecution(self, context: _Context, goal: str) -> Record:
        touched = [
            substitute_symbols(
                clause, [context.renamed[n] for n in sorted(reads & context.changed)]
            )
            for clause, reads in self.clauses[goal]
            if reads & context.changed
        ]
        if not touched:
            return Record(
                Kind.CONSECUTION,
                self.target.label,
                context.action,
                goal,
                Result.PROVED,
                0.0,
                "by frame: the action modifies none of its symbols",
                Basis.FRAME,
            )
        own = [] if issue_for(self.config, goal) is None else [self.at_pre[goal]]
        query = [*self.assumed, context.formula, *own, *touched]
        earlier = self.known.prover_of(query)
        if earlier is not None:
            return self._by_identity(Kind.CONSECUTION, context.action, goal, earlier)
        refutation = _refute(context.solver, touched, own, self.retry_timeout_ms)
        detail = ""
        if refutation.model is not None:
            detail = self._counterexample(refutation.model, context, goal)
        elif refutation.verdict == "unsat":
            self.known.remember(query, self.target.label)
        return self._record(Kind.CONSECUTION, context.action, goal, refutation, detail)

    def _by_identity(self, kind: Kind, action: str, goal: str, earlier: str) -> Record:
        detail = f"by identity: the very same query was proved for {earlier}"
        return Record(
            kind, self.target.label, action, goal, Result.PROVED, 0.0, detail, Basis.IDENTITY
        )

    def _counterexample(self, model: Model, context: _Context, goal: str) -> str:
        names = naming(model, [self.pre, context.post])
        call = f"{context.action}({', '.join(names.name(model.value(a)) for a in context.args)})"
        before = describe(decode(model, self.pre, names))
        after = describe(decode(model, context.post, names))
        return (
            f"counterexample to induction: {goal} is not preserved by {call}\n"
            f"  before: {before}\n  after:  {after}"
        )

    def check_progress(self, facts: Mapping[str, ProgressFact] = PROGRESS) -> list[Record]:
        """Every progress fact that applies holds in every state satisfying the goals."""
        records = []
        for name, fact in facts.items():
            if not fact.applies(self.config):
                continue
            if not self.selected(Kind.PROGRESS, self.target.label, "", name):
                continue
            records.append(self._progress(name, fact))
        return records

    def _progress(self, name: str, fact: ProgressFact) -> Record:
        local = Locals(f"{name}!")
        premise, conclusion = fact.build(self.config, self.pre, local)
        query = [*self.assumed, premise, *local.side, conclusion]
        earlier = self.known.prover_of(query)
        if earlier is not None:
            return self._by_identity(Kind.PROGRESS, "", name, earlier)
        solver = Solver(self.timeout_ms)
        solver.add(*self.axioms, *self.assumed, premise, *local.side)
        refutation = _refute(solver, [conclusion], (), self.retry_timeout_ms)
        detail = ""
        if refutation.model is not None:
            state = decode(refutation.model, self.pre, naming(refutation.model, [self.pre]))
            detail = f"{name} fails in: {describe(state)}"
        elif refutation.verdict == "unsat":
            self.known.remember(query, self.target.label)
        return self._record(Kind.PROGRESS, "", name, refutation, detail)

    def _record(
        self, kind: Kind, action: str, goal: str, refutation: Refutation, detail: str
    ) -> Record:
        result = {
            "unsat": Result.PROVED,
            "sat": Result.FAILED,
        }.get(refutation.verdict, Result.UNKNOWN)
        if result is Result.FAILED and issue_for(self.config, goal) is not None:
            result = Result.KNOWN_ISSUE
        basis = Basis.SOLVER if result is Result.PROVED else None
        return Record(kind, self.target.label, action, goal, result, refutation.ms, detail, basis)


@dataclass(frozen=True, slots=True)
class _Context:
    """One action's consecution checks: the solver holding the hypotheses and the step."""

    solver: Solver
    action: str
    args: tuple[Term, ...]
    post: Vocab
    changed: frozenset[str]
    formula: Formula
    renamed: dict[str, Pair]
    """Each modified symbol's substitution pair, pre-state → post-state."""


def _refute(
    solver: Solver,
    clauses: list[Formula],
    extra: Iterable[Formula] = (),
    retry_ms: int | None = RETRY_TIMEOUT_MS,
) -> Refutation:
    """Try to falsify each clause in its own frame: ``unsat`` when none can be falsified. A
    check that runs out of time is asked once more within ``retry_ms`` (None: not)."""
    spent = 0.0
    for clause in clauses:
        with solver.frame():
            solver.add(*extra, neg(clause))
            outcome: Outcome = solver.check()
            if outcome.verdict == "unknown" and retry_ms is not None:
                spent += outcome.ms
                outcome = solver.check(timeout_ms=retry_ms)
        spent += outcome.ms
        if outcome.verdict != "unsat":
            return Refutation(outcome.verdict, spent, outcome.model)
    return Refutation("unsat", spent, None)


def is_disabled(config: Config, name: str) -> bool:
    """True when the configuration disables action ``name`` outright (e.g. the mutex outside
    mutex mode): its guard is the constant false."""
    local = Locals(f"disabled?{name}!")
    step = effect(config, name, Vocab.named(""), arguments(name, local), local)
    return is_false(simplify(step.guard))
