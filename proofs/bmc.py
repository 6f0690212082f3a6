"""Bounded model checking: shortest traces from the initial state, decoded and replayed.

:func:`search` unrolls the transition relation step by step from the empty state (``System()``),
asking z3 at each depth for a last state where ``goal`` holds — an invariant violated (to refute an
unsafe design) or an action fired (a witness that the action is not vacuous). The first depth that
answers ``sat`` gives a shortest trace. The trace is decoded into named steps and states, then
:func:`replay`\\ ed through the Python model: each step must be enabled there, one of its successors
must have exactly the decoded state's structure, and (for a refutation) the Python predicate must
fail at the end. A trace that does not replay is an :class:`~forkshare.proofs.errors.EncodingMismatchError`.

Discussion:
    *Finite universes, grounded.* The Python model enumerates ``range(config.workers)`` slots, so
    the unrolling has exactly that many; processes, sockets, connections and generations get the
    few elements of :data:`SIZES` (every shortest trace the suite needs fits). Over finite
    universes every quantifier is expanded while the formula is built
    (:func:`~forkshare.proofs.encoding.grounded`), so each check is quantifier-free and z3's
    ``QF_UF`` solver answers in milliseconds; model-based quantifier instantiation over the same
    sorts took seconds. The rejected alternative, leaving the sorts unbounded, is what the
    inductive proofs do; a bounded search gains nothing from it.

    *One step, grounded once.* Step k is a renamed copy (``substitute_funs``, one C call) of a
    step template built once per configuration: one action is chosen, each symbol's new value is
    that action's update or its old value, so no frame axioms are needed. Actions the
    configuration disables are never chosen, and a new process, socket or connection takes the
    first free element (symmetry breaking: any trace can be renamed so).

    *Every reuseport socket has a slot.* The inductive proofs must leave that constraint out (see
    :mod:`forkshare.proofs.transitions`); with finitely many slots it is added to every state, so
    every decoded state is one the Python model can reach — and the replay checks it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from forkshare.model.actions import ACTIONS
from forkshare.model.config import Bounds, Config, Mode
from forkshare.model.explorer import TraceStep, initial_state
from forkshare.model.state import System
from forkshare.model.table import Param, describe_step
from forkshare.model.trace_text import describe_state
from forkshare.proofs.encoding import (
    STATE_SYMBOLS,
    STATIC,
    Formula,
    Locals,
    Model,
    Outcome,
    Solver,
    Symbol,
    Term,
    Vocab,
    choice,
    chosen_of,
    conj,
    disj,
    distinct,
    exists,
    forall,
    grounded,
    implies,
    is_false,
    ite,
    neg,
    one_of,
    renamed,
    renaming,
    simplify,
    static_axioms,
    substitute_symbols,
    text,
    var,
)
from forkshare.proofs.errors import EncodingMismatchError
from forkshare.proofs.structure import Naming, Structure, abstract, decode, naming, universes_for
from forkshare.proofs.transitions import Update, arguments, effect

UNBOUNDED = Bounds(
    connections=99,
    starts=99,
    kills=99,
    master_kills=99,
    stops=99,
    reloads=99,
    upgrades=99,
    shutdowns=99,
    helpers=99,
)
"""Budgets for replaying a z3 trace: the encoding has none, so the replay must not run out."""

SIZES = {"proc": 3, "sock": 2, "conn": 1, "gen": 2}
"""Elements per sort of a bounded search: every shortest trace the suite needs fits (three
processes, two sockets, one connection, two generations; slots are ``config.workers``)."""

Goal = Callable[[Config, Vocab], Formula]
"""What the last state of a trace must satisfy."""


BUDGETS: dict[str, str] = {
    "start_master": "starts",
    "connect": "connections",
    "kill_worker": "kills",
    "kill_master": "master_kills",
    "stop_worker": "stops",
    "reload": "reloads",
    "upgrade": "upgrades",
    "graceful_shutdown": "shutdowns",
    "fast_shutdown": "shutdowns",
    "spawn_helper": "helpers",
}
"""The environment actions whose Python guard reads a budget, and the field of
:class:`~forkshare.model.config.Bounds` it reads (``tests/proofs`` checks the list)."""


def allowed_by(budgets: Bounds) -> frozenset[str]:
    """The actions a search under ``budgets`` may take: all but those whose budget is 0."""
    return frozenset(a for a in ACTIONS if a not in BUDGETS or getattr(budgets, BUDGETS[a]) > 0)


def spent_once(budgets: Bounds) -> tuple[frozenset[str], ...]:
    """The groups of actions sharing a budget of 1 (a search takes at most one of them)."""
    fields = sorted({f for f in BUDGETS.values() if getattr(budgets, f) == 1})
    return tuple(frozenset(a for a, f in BUDGETS.items() if f == field) for field in fields)


def sizes_for(config: Config, budgets: Bounds) -> dict[str, int]:
    """Universes just large enough for the objects ``budgets`` lets a run of ``config`` create
    (each start a master and its workers, each kill a respawn, each reload a generation, each
    upgrade a master and its workers, each helper a process), and never larger than
    :data:`SIZES`: a smaller universe makes every unrolled step cheaper."""
    generation = 1 + config.workers
    procs = (
        budgets.starts * generation
        + budgets.kills
        + budgets.reloads * config.workers
        + budgets.upgrades * generation
        + budgets.helpers
    )
    per_start = config.workers if config.mode is Mode.REUSEPORT else 1
    socks = per_start * (budgets.starts + (budgets.reloads if config.reload_rebinds else 0))
    if config.private_reuseport:
        socks = config.workers + budgets.kills
    wanted = {
        "proc": procs,
        "sock": socks,
        "conn": budgets.connections,
        "gen": 1 + budgets.reloads + budgets.upgrades,
    }
    return {sort: max(1, min(SIZES[sort], n)) for sort, n in wanted.items()}


def initial(v: Vocab) -> Formula:
    """``System()``: no process, no socket, no connection, the mutex free, no shutdown yet."""
    p, s, c = var("proc", "i_p"), var("sock", "i_s"), var("conn", "i_c")
    return conj(
        forall([p], neg(v.p_in(p))),
        forall([s], neg(v.s_in(s))),
        forall([c], neg(v.c_in(c))),
        neg(v.locked()),
        neg(v.shut_down_once()),
    )


@dataclass(frozen=True, slots=True)
class Trace:
    """A shortest trace found by z3 and replayed through the Python model."""

    steps: tuple[TraceStep, ...]
    ms: float
    """Solver time over every depth tried."""
    slowest_ms: float

    def numbered(self) -> list[str]:
        """``1. start_master() → master1{sock0} | sock0 q=[]``, one line per step."""
        return [
            f"{k}. {step.label} → {describe_state(step.state)}"
            for k, step in enumerate(self.steps, 1)
        ]


@dataclass(slots=True)
class _Unrolling:
    config: Config
    solver: Solver
    universes: dict[str, list[str]]
    states: list[Vocab] = field(default_factory=list)
    template: _Template | None = None
    fired: list[dict[str, Formula]] = field(default_factory=list)
    locals: list[dict[str, Locals]] = field(default_factory=list)
    slots: tuple[Term, ...] = ()
    alphabet: frozenset[str] = frozenset(ACTIONS)
    """The actions a step may take."""
    once: tuple[frozenset[str], ...] = ()
    """Groups of actions of which at most one step may take any (a budget of 1)."""


def search(
    config: Config,
    goal: Goal,
    *,
    max_depth: int,
    timeout_ms: int,
    sizes: Mapping[str, int] = SIZES,
    budgets: Bounds | None = None,
) -> Trace | None:
    """A shortest trace (at most ``max_depth`` steps) whose last state satisfies ``goal``;
    with ``budgets``, an environment action whose budget is 0 is never taken, and one whose
    budget is 1 at most once (the actions sharing a budget share that once)."""
    unrolling = _start(config, timeout_ms, sizes, budgets)
    spent, slowest = 0.0, 0.0
    for depth in range(max_depth + 1):
        if depth:
            _extend(unrolling)
        outcome = _check(unrolling, lambda: goal(config, unrolling.states[-1]))
        spent, slowest = spent + outcome.ms, max(slowest, outcome.ms)
        if outcome.model is not None:
            steps = replay(config, outcome.model, unrolling)
            return Trace(steps, spent, slowest)
    return None


def cover(
    config: Config,
    actions: frozenset[str],
    *,
    max_depth: int,
    timeout_ms: int,
    sizes: Mapping[str, int] = SIZES,
) -> dict[str, Trace]:
    """For each action, a trace from the initial state that fires it; the trace found for an
    action ends with it and is a shortest one (other actions on the way are covered too)."""
    unrolling = _start(config, timeout_ms, sizes)
    found: dict[str, Trace] = {}
    for _ in range(max_depth):
        _extend(unrolling)
        while remaining := actions - found.keys():
            outcome = _check(unrolling, _fires_last(unrolling.fired[-1], remaining))
            if outcome.model is None:
                break
            steps = replay(config, outcome.model, unrolling)
            for k, step in enumerate(steps):
                if step.action in remaining and step.action not in found:
                    found[step.action] = Trace(steps[: k + 1], outcome.ms, outcome.ms)
        if not actions - found.keys():
            break
    return found


def _fires_last(last: dict[str, Formula], actions: frozenset[str]) -> Callable[[], Formula]:
    """The goal "the last step fires one of ``actions``"."""
    return lambda: disj(*[last[a] for a in sorted(actions)])


def _check(unrolling: _Unrolling, goal: Callable[[], Formula]) -> Outcome:
    """Check the unrolling with ``goal`` in a frame (built over the finite universes)."""
    with unrolling.solver.frame():
        with grounded(unrolling.universes):
            unrolling.solver.add(goal())
        return unrolling.solver.check()


def _start(
    config: Config, timeout_ms: int, sizes: Mapping[str, int], budgets: Bounds | None = None
) -> _Unrolling:
    universes = {sort: [f"{sort}{k}" for k in range(size)] for sort, size in sizes.items()}
    universes["slot"] = [f"slot{k}" for k in range(config.workers)]
    solver = Solver(timeout_ms, logic="QF_UF")
    first = Vocab.named("@0")
    with grounded(universes) as elements:
        solver.add(*[distinct(*terms) for terms in elements.values()])
        solver.add(*static_axioms(), initial(first), *closed_world(first, elements))
        solver.add(one_of(STATIC.gen_first(), "gen"))
    slots = tuple(elements["slot"])
    alphabet = frozenset(ACTIONS) if budgets is None else allowed_by(budgets)
    once = () if budgets is None else spent_once(budgets)
    return _Unrolling(config, solver, universes, [first], slots=slots, alphabet=alphabet, once=once)


def _extend(unrolling: _Unrolling) -> None:
    """Add step k: a copy of the grounded step template, renamed onto states k-1 and k."""
    if unrolling.template is None:
        with grounded(unrolling.universes) as elements:
            unrolling.template = _template(unrolling.config, elements, unrolling.alphabet)
    template = unrolling.template
    k = len(unrolling.states)
    post = Vocab.named(f"@{k}")
    pairs = renaming(template.pre, unrolling.states[-1]) + renaming(template.post, post)
    scopes: dict[str, Locals] = {}
    for action, local in template.locals.items():
        copy = Locals(f"s{k}!{action}!")
        for name, symbol in local.symbols.items():
            new, old, replacement = renamed(symbol, f"{copy.prefix}{name}")
            copy.symbols[name] = new
            pairs.append((old, replacement))
        scopes[action] = copy
    _, old, replacement = renamed(template.chosen, f"s{k}!action")
    pairs.append((old, replacement))
    unrolling.solver.add(substitute_symbols(template.formula, pairs))
    unrolling.states.append(post)
    fired = {a: substitute_symbols(f, [(old, replacement)]) for a, f in template.fired.items()}
    for group in unrolling.once:
        here = disj(*[fired[a] for a in sorted(group)])
        unrolling.solver.add(
            *[neg(conj(here, disj(*[e[a] for a in sorted(group)]))) for e in unrolling.fired]
        )
    unrolling.fired.append(fired)
    unrolling.locals.append(scopes)


@dataclass(frozen=True, slots=True)
class _Template:
    """One step of the unrolling, grounded once, between two placeholder states."""

    pre: Vocab
    post: Vocab
    fired: dict[str, Formula]
    chosen: Term
    locals: dict[str, Locals]
    formula: Formula


def _template(
    config: Config, elements: dict[str, list[Term]], alphabet: frozenset[str]
) -> _Template:
    """One action is chosen; each symbol's new value is the chosen action's update (or the old
    value when that action does not modify it), so no frame axioms are needed."""
    pre, post = Vocab.named("@pre"), Vocab.named("@post")
    fired = choice("step!action", list(ACTIONS))
    scopes: dict[str, Locals] = {}
    parts: list[Formula] = []
    writers: dict[str, list[tuple[Formula, Update]]] = {s.name: [] for s in STATE_SYMBOLS}
    for name in ACTIONS:
        local = Locals(f"step!{name}!")
        step = effect(config, name, pre, arguments(name, local), local)
        scopes[name] = local
        if name not in alphabet or is_false(simplify(step.guard)):  # never chosen
            parts.append(neg(fired[name]))
            continue
        parts.append(implies(fired[name], conj(step.guard, *local.side)))
        parts += [one_of(t, sort) for t, sort in local.loose()]
        parts += _least_fresh(pre, local, elements)
        for symbol, update in step.updates.items():
            writers[symbol].append((fired[name], update))
    parts += [_written(symbol, pre, post, writers[symbol.name]) for symbol in STATE_SYMBOLS]
    parts += [_slotted(post), *closed_world(post, elements)]
    chosen = chosen_of(next(iter(fired.values())))
    return _Template(pre, post, fired, chosen, scopes, conj(*parts))


_FRESH = {"proc": "p_in", "sock": "s_in", "conn": "c_in"}


def _least_fresh(pre: Vocab, local: Locals, elements: dict[str, list[Term]]) -> list[Formula]:
    """Symmetry breaking: a new process, socket or connection takes the first element that is
    not there (any trace can be renamed so; it spares the solver the permutations)."""
    found = []
    for name, sort in ((n, s) for n, s in _new_elements(local)):
        there = pre.decl(_FRESH[sort])
        taken = [there(e) for e in elements[sort]]
        if sort == "proc":
            taken = [
                disj(t, conj(pre.locked(), pre.holder() == e))
                for t, e in zip(taken, elements[sort], strict=True)
            ]
        for k, e in enumerate(elements[sort]):
            found.append(implies(name == e, conj(*taken[:k])))
    return found


def _new_elements(local: Locals) -> list[tuple[Term, str]]:
    return [(t, s) for t, s in local.loose() if str(t).split("!")[-1].startswith(("new_", "own_"))]


def closed_world(v: Vocab, elements: Mapping[str, Sequence[Term]]) -> list[Formula]:
    """The state's functions into uninterpreted sorts take values among the elements."""
    found = [one_of(v.holder(), "proc")]
    found += [one_of(v.gen(p), "gen") for p in elements["proc"]]
    return found


def _written(
    symbol: Symbol, pre: Vocab, post: Vocab, writers: list[tuple[Formula, Update]]
) -> Formula:
    xs = [var(s, f"w_{symbol.name}_{k}") for k, s in enumerate(symbol.domain)]
    value = pre.decl(symbol.name)(*xs)
    for flag, update in reversed(writers):
        value = ite(flag, update(*xs), value)
    body = post.decl(symbol.name)(*xs) == value
    return forall(xs, body) if xs else body


def _slotted(v: Vocab) -> Formula:
    """Every reuseport socket has a slot (true of every Python state; see the Discussion)."""
    s, i = var("sock", "sl_s"), var("slot", "sl_i")
    return forall([s], implies(conj(v.s_in(s), v.reuseport(s)), exists([i], v.sslot(s, i))))


# ---------------------------------------------------------------------------------------------
# Replay
# ---------------------------------------------------------------------------------------------

_SORT_PREFIX = {"proc": "proc", "sock": "sock", "conn": "conn"}


def replay(config: Config, model: Model, unrolling: _Unrolling) -> tuple[TraceStep, ...]:
    """Re-run the decoded trace through the Python model, checking every state's structure.

    Raises:
        EncodingMismatchError: a step is not enabled in Python, or no successor has the decoded
            structure.
    """
    run = _Replay(replace(config, bounds=UNBOUNDED), model, naming(model, unrolling.states))
    run.slots = {text(model.value(t)): k for k, t in enumerate(unrolling.slots)}
    state = initial_state()
    steps: list[TraceStep] = []
    for k, fired in enumerate(unrolling.fired):
        name = next(n for n, flag in fired.items() if model.holds(flag))
        args = run.arguments(name, unrolling.locals[k][name])
        target = decode(model, unrolling.states[k + 1], run.names)
        state = run.step(state, name, args, target, unrolling.states[k])
        steps.append(TraceStep(name, args, state))
    return tuple(steps)


@dataclass(slots=True)
class _Replay:
    """The pairing of z3 elements with Python ids, grown as the trace creates objects."""

    config: Config
    model: Model
    names: Naming
    slots: dict[str, int] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    """``str(model value)`` → pid, sid or cid."""

    def arguments(self, name: str, local: Locals) -> tuple[int, ...]:
        values = []
        for k, param in enumerate(ACTIONS[name].params):
            key = text(self.model.value(local.symbols[f"arg{k}_{param.value}"]))
            table = self.slots if param is Param.SLOT else self.ids
            if key not in table:
                raise EncodingMismatchError(f"{name}: argument {key} names nothing in the replay")
            values.append(table[key])
        return tuple(values)

    def step(
        self, state: System, name: str, args: tuple[int, ...], target: Structure, before: Vocab
    ) -> System:
        action = ACTIONS[name]
        label = describe_step(name, args, action.params)
        if not action.guard(self.config, state, *args):
            raise EncodingMismatchError(f"{label} is not enabled in the Python model here")
        for succ in action.successors(self.config, state, args):
            pairing = dict(self.ids)
            self._pair_new(state, succ, target, before, pairing)
            if self._agrees(succ, target, pairing):
                self.ids = pairing
                return succ
        raise EncodingMismatchError(f"no Python successor of {label} has the decoded state")

    def _born(self, sort: str, marker: str, target: Structure, before: Vocab) -> list[Term]:
        was_there = before.decl(marker)
        return [
            t
            for t in self.names.terms[sort]
            if not self.model.holds(was_there(t)) and target.holds(marker, self.names.name(t))
        ]

    def _pair_new(
        self, old: System, new: System, target: Structure, before: Vocab, pairing: dict[str, int]
    ) -> None:
        pids = [p.pid for p in new.processes if old.process(p.pid) is None]
        procs = self._born("proc", "p_in", target, before)
        if len(pids) == len(procs) == 1:
            pairing[text(procs[0])] = pids[0]
        cids = [c.cid for c in new.connections[len(old.connections) :]]
        conns = self._born("conn", "c_in", target, before)
        if len(cids) == len(conns) == 1:
            pairing[text(conns[0])] = cids[0]
        made = new.listeners[len(old.listeners) :]
        for term in self._born("sock", "s_in", target, before):
            slot = self._slot_of(target, term)
            match = [lst.sid for lst in made if lst.slot == slot]
            if len(match) == 1:
                pairing[text(term)] = match[0]

    def _slot_of(self, target: Structure, term: Term) -> int:
        sock = self.names.name(term)
        for key, index in self.slots.items():
            if target.holds("sslot", sock, self.names.names[key]):
                return index
        return -1

    def _agrees(self, system: System, target: Structure, pairing: dict[str, int]) -> bool:
        renaming = {
            self.names.names[key]: f"{_SORT_PREFIX[sort]}{pairing[key]}"
            for sort in _SORT_PREFIX
            for key in map(text, self.names.terms[sort])
            if key in pairing
        }
        renaming |= {self.names.names[key]: f"slot{k}" for key, k in self.slots.items()}
        concrete = abstract(self.config, system, universes_for(self.config, [system]))
        return visible(concrete) == visible(target, renaming)


def visible(structure: Structure, renaming: dict[str, str] | None = None) -> frozenset[object]:
    """The facts about the elements that are there, renamed: what a replay must reproduce.

    Junk on absent elements and the static orders are left out; the lock word's pid is kept as
    ``gone`` when no process has it.
    """
    rename = renaming or {}
    present = {n for sort in ("proc", "sock", "conn") for n in structure.present(sort)}
    kinds = {s.name: s for s in STATE_SYMBOLS}
    seen: set[object] = set()
    for name, symbol in kinds.items():
        if name in ("holder",):
            continue
        for row in structure.facts[name]:
            args = row[: len(symbol.domain)]
            if all(
                a in present for a, s in zip(args, symbol.domain, strict=True) if s in _SORT_PREFIX
            ):
                seen.add((name, tuple(rename.get(e, e) for e in row)))
    if structure.holds("locked"):
        holder = structure.value("holder")
        seen.add(("holder", rename.get(holder, holder) if holder in present else "gone"))
    return frozenset(seen)
