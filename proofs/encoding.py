"""The z3 facade: sorts, the state vocabulary, formula constructors, solver frames, model decoding.

This is the only module of forkshare that imports z3 (STYLE.md rule 10; ``tests/proofs`` checks it).
The transition formulas (:mod:`forkshare.proofs.transitions`), the invariant formulas
(:mod:`forkshare.proofs.claims`), the lemmas, the obligations and the bounded model checker build
and check formulas only through the functions below, so the solver's API is confined to one file.

The state of the model (:class:`forkshare.model.state.System`) becomes a first-order structure over
uninterpreted sorts — processes, listening sockets, connections, worker slots, generations — and
three finite enumerations (a connection's fate, a process's phase, a master's shutdown). Every
state symbol is listed once in :data:`STATE_SYMBOLS`; a :class:`Vocab` is one copy of them (the
pre-state, a post-state, step *k* of an unrolling).

Discussion:
    *Existence predicates instead of a shrinking universe.* A System holds the processes in its
    table, the sockets created so far and the connections made so far; an element of a sort is
    "there" when ``p_in``/``s_in``/``c_in`` holds. Creating a process picks an element that is not
    there and defines every attribute of it; removing one clears ``p_in``. The alternative, one
    sort per generation of objects, cannot express "a fresh pid". Every formula quantifies over
    the elements that are there, exactly as the Python model iterates its tuples, so attributes
    left over on absent elements ("junk") cannot change a verdict.

    *Counters become predicates.* ``accepts`` is kept as "accepted at least once" and "at least
    twice", ``wakeups`` as "woke two or more", ``orphan_accepts`` as "accepted as an orphan",
    ``usage.shutdowns`` as "a shutdown happened": the invariants only compare these counters with
    0 or 1, and :mod:`forkshare.proofs.structure` maps each concrete counter onto its predicate.
    The role of a process is two flags (``master``, ``helper``; a worker has neither), so the
    old proofs' "not a master" reads "a worker" only together with "not a helper".

    *An accept queue is a relation and an order.* ``in_queue`` says which connections wait on a
    socket; ``ahead`` orders them, oldest first, because accept() takes the head (E1). The order
    is the order of admission, not of arrival: a connection held back by TCP_DEFER_ACCEPT (K19)
    enters the queue behind younger ones, so the static order of connections cannot stand in
    for it. ``ahead`` relates two connections of the same queue only; a step that empties a
    place in a queue (accept, the close that resets it) drops that connection's pairs.

    *Stratified EPR, checked.* Formulas stay in the decidable fragment where every ∀∃ alternation
    (after Skolemisation) and every function symbol goes from one sort to a later one in an
    acyclic order (Ivy's stratification): slots and connections before sockets, sockets before
    processes, processes before generations and the finite enumerations.
    :func:`sort_dependencies` computes those edges for any formula; the tests require them to be
    acyclic for every verification condition, so a change that leaves the fragment fails a test
    instead of making z3 answer ``unknown``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from typing import Any, TypeAlias

import z3

from forkshare.model.state import Fate, Phase, Shutdown

Formula: TypeAlias = Any
"""A z3 Boolean expression (z3 ships no type stubs; the alias keeps ``Any`` in one place)."""
Term: TypeAlias = Any
"""A z3 expression of any sort."""
Decl: TypeAlias = Any
"""A z3 function declaration (a state symbol)."""
Pair: TypeAlias = tuple[Any, Any]
"""A substitution pair: a declaration and the term that replaces it (see :func:`renaming`)."""

# ---------------------------------------------------------------------------------------------
# Sorts
# ---------------------------------------------------------------------------------------------

PROC = z3.DeclareSort("Proc")
SOCK = z3.DeclareSort("Sock")
CONN = z3.DeclareSort("Conn")
SLOT = z3.DeclareSort("Slot")
GEN = z3.DeclareSort("Gen")
BOOL = z3.BoolSort()
FATE, _FATE_CONSTS = z3.EnumSort("Fate", [f.value for f in Fate])
PHASE, _PHASE_CONSTS = z3.EnumSort("Phase", [p.value for p in Phase])
SHUTDOWN, _SHUTDOWN_CONSTS = z3.EnumSort("Shutdown", [s.value for s in Shutdown])

SORTS: dict[str, Any] = {
    "proc": PROC,
    "sock": SOCK,
    "conn": CONN,
    "slot": SLOT,
    "gen": GEN,
    "bool": BOOL,
    "fate": FATE,
    "phase": PHASE,
    "shutdown": SHUTDOWN,
}
"""Sort names used by the symbol tables, structures and element names."""

UNINTERPRETED = ("proc", "sock", "conn", "slot", "gen")
"""The sorts whose size is unbounded (every number of workers, connections, …)."""
UNINTERPRETED_SORT_NAMES = frozenset(UNINTERPRETED)

ENUMS: dict[str, dict[str, Term]] = {
    "fate": {f.value: c for f, c in zip(Fate, _FATE_CONSTS, strict=True)},
    "phase": {p.value: c for p, c in zip(Phase, _PHASE_CONSTS, strict=True)},
    "shutdown": {s.value: c for s, c in zip(Shutdown, _SHUTDOWN_CONSTS, strict=True)},
}
"""The constants of each enumeration sort, by the Python enum's value."""


def fate(value: Fate) -> Term:
    """The z3 constant for a connection fate."""
    return ENUMS["fate"][value.value]


def phase(value: Phase) -> Term:
    """The z3 constant for a process phase."""
    return ENUMS["phase"][value.value]


def shutdown(value: Shutdown) -> Term:
    """The z3 constant for a master's shutdown."""
    return ENUMS["shutdown"][value.value]


# ---------------------------------------------------------------------------------------------
# The state vocabulary
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Symbol:
    """One state (or static) symbol: its argument sorts, its result sort and what it means."""

    name: str
    domain: tuple[str, ...]
    range: str
    doc: str


STATE_SYMBOLS: tuple[Symbol, ...] = (
    Symbol("p_in", ("proc",), "bool", "the process is in the process table (alive or a zombie)"),
    Symbol("master", ("proc",), "bool", "the process is a master"),
    Symbol("helper", ("proc",), "bool", "the process is a helper (a worker when neither)"),
    Symbol("parent", ("proc", "proc"), "bool", "parent(child, p): p is the child's parent pid"),
    Symbol("gen", ("proc",), "gen", "worker: its generation; master: its current generation"),
    Symbol("wslot", ("proc", "slot"), "bool", "the worker's slot"),
    Symbol("phase", ("proc",), "phase", "running, exiting or dead"),
    Symbol("stopped", ("proc",), "bool", "SIGSTOPped"),
    Symbol("holds", ("proc", "sock"), "bool", "the process holds a descriptor for the socket"),
    Symbol("holds_mutex", ("proc",), "bool", "the process believes it holds the accept mutex"),
    Symbol("quit", ("proc",), "bool", "the worker was told to quit gracefully (QUIT)"),
    Symbol("terminate", ("proc",), "bool", "the stopped worker was told to exit now (TERM)"),
    Symbol("orphan_accepted", ("proc",), "bool", "the worker accepted as an orphan"),
    Symbol("master_killed", ("proc",), "bool", "the process's master died by SIGKILL"),
    Symbol("shutdown", ("proc",), "shutdown", "the shutdown the master was told to perform"),
    Symbol("abandoned", ("proc", "slot"), "bool", "the master will not refill the slot"),
    Symbol("s_in", ("sock",), "bool", "the socket was created (closed ones stay)"),
    Symbol("reuseport", ("sock",), "bool", "SO_REUSEPORT was set before bind"),
    Symbol("sslot", ("sock", "slot"), "bool", "the reuseport socket's slot"),
    Symbol("s_by_master", ("sock",), "bool", "a master created the socket"),
    Symbol("listening", ("sock",), "bool", "the socket listens (its last descriptor is open)"),
    Symbol("closed_early", ("sock",), "bool", "it closed while the service was meant to run"),
    Symbol("c_in", ("conn",), "bool", "the client connected"),
    Symbol("fate", ("conn",), "fate", "where the connection is"),
    Symbol("in_queue", ("conn", "sock"), "bool", "the connection waits in the socket's queue"),
    Symbol("ahead", ("conn", "conn"), "bool", "ahead(c, d): c waits in d's queue, ahead of d"),
    Symbol("arrived_on", ("conn", "sock"), "bool", "the socket the connection arrived on"),
    Symbol("owns", ("conn", "proc"), "bool", "the connection's owner pid"),
    Symbol("accepted_once", ("conn",), "bool", "accept() returned it at least once"),
    Symbol("accepted_twice", ("conn",), "bool", "accept() returned it at least twice"),
    Symbol("c_by_master", ("conn",), "bool", "a master called the accept() that returned it"),
    Symbol("requested", ("conn",), "bool", "the client sent its request"),
    Symbol("woke_many", ("conn",), "bool", "its arrival woke two or more processes"),
    Symbol("held_back", ("conn",), "bool", "it arrived held back and never entered a queue"),
    Symbol("locked", (), "bool", "the accept mutex's lock word is not 0"),
    Symbol("holder", (), "proc", "the pid in the lock word (meaningful when locked)"),
    Symbol("shut_down_once", (), "bool", "a graceful or fast shutdown was asked for"),
)
"""Every symbol of the state, once: the z3 counterpart of the fields of System (see Discussion)."""

STATIC_SYMBOLS: tuple[Symbol, ...] = (
    Symbol("conn_lt", ("conn", "conn"), "bool", "connection order (cids count up)"),
    Symbol("gen_lt", ("gen", "gen"), "bool", "generation order"),
    Symbol("gen_first", (), "gen", "generation 1, a started master's"),
)
"""Symbols no action changes: the orders of connections and generations."""

SYMBOLS: dict[str, Symbol] = {s.name: s for s in (*STATE_SYMBOLS, *STATIC_SYMBOLS)}


def _declare(symbol: Symbol, suffix: str) -> Decl:
    sorts = [SORTS[s] for s in symbol.domain]
    return z3.Function(symbol.name + suffix, *sorts, SORTS[symbol.range])


@dataclass(frozen=True, slots=True)
class Vocab:
    """One copy of the state symbols; attributes are z3 function declarations named as the table."""

    p_in: Decl
    master: Decl
    helper: Decl
    parent: Decl
    gen: Decl
    wslot: Decl
    phase: Decl
    stopped: Decl
    holds: Decl
    holds_mutex: Decl
    quit: Decl
    terminate: Decl
    orphan_accepted: Decl
    master_killed: Decl
    shutdown: Decl
    abandoned: Decl
    s_in: Decl
    reuseport: Decl
    sslot: Decl
    s_by_master: Decl
    listening: Decl
    closed_early: Decl
    c_in: Decl
    fate: Decl
    in_queue: Decl
    ahead: Decl
    arrived_on: Decl
    owns: Decl
    accepted_once: Decl
    accepted_twice: Decl
    c_by_master: Decl
    requested: Decl
    woke_many: Decl
    held_back: Decl
    locked: Decl
    holder: Decl
    shut_down_once: Decl

    @staticmethod
    def named(suffix: str) -> Vocab:
        """A fresh copy whose symbols are the table's names followed by ``suffix``."""
        return Vocab(**{s.name: _declare(s, suffix) for s in STATE_SYMBOLS})

    def primed(self, names: Iterable[str], suffix: str) -> Vocab:
        """This vocabulary with the symbols ``names`` replaced by fresh ones (a post-state that
        shares every symbol an action does not modify: no frame axioms needed)."""
        return replace(self, **{n: _declare(SYMBOLS[n], suffix) for n in names})

    def decl(self, name: str) -> Decl:
        """The declaration of state symbol ``name``."""
        return getattr(self, name)

    def differs(self, other: Vocab) -> frozenset[str]:
        """Names of the symbols whose declarations differ between two copies."""
        return frozenset(
            f.name for f in fields(self) if getattr(self, f.name) is not getattr(other, f.name)
        )


@dataclass(frozen=True, slots=True)
class Statics:
    """The static symbols and the axioms they obey (strict total orders)."""

    conn_lt: Decl
    gen_lt: Decl
    gen_first: Decl


STATIC = Statics(**{s.name: _declare(s, "") for s in STATIC_SYMBOLS})


def _strict_total_order(lt: Decl, sort: Any, name: str) -> list[Formula]:
    x, y, z = (z3.Const(f"{name}_{v}", sort) for v in "xyz")
    return [
        forall([x], z3.Not(lt(x, x))),
        forall([x, y, z], z3.Implies(z3.And(lt(x, y), lt(y, z)), lt(x, z))),
        forall([x, y], z3.Or(x == y, lt(x, y), lt(y, x))),
    ]


def static_axioms() -> list[Formula]:
    """Connections and generations are totally ordered (cid order, generation numbers)."""
    return [
        *_strict_total_order(STATIC.conn_lt, CONN, "co"),
        *_strict_total_order(STATIC.gen_lt, GEN, "go"),
    ]


def is_successor(before: Term, after: Term) -> Formula:
    """``after`` is the generation right after ``before`` (generation + 1)."""
    h = z3.Const("succ_h", GEN)
    lt = STATIC.gen_lt
    return z3.And(lt(before, after), forall([h], z3.Not(z3.And(lt(before, h), lt(h, after)))))


def one_of(term: Term, sort: str) -> Formula:
    """Inside :func:`grounded`: ``term`` is one of the elements of ``sort``."""
    return z3.Or(*[term == e for e in _GROUND[sort]])


# ---------------------------------------------------------------------------------------------
# Formula constructors (the rest of the package builds formulas only with these)
# ---------------------------------------------------------------------------------------------

TRUE: Formula = z3.BoolVal(True)
FALSE: Formula = z3.BoolVal(False)


def var(sort: str, name: str) -> Term:
    """A constant of ``sort`` (used as a bound variable by :func:`forall`/:func:`exists`)."""
    return z3.Const(name, SORTS[sort])


def forall(variables: Sequence[Term], body: Formula) -> Formula:
    """∀ variables. body (expanded into a conjunction inside :func:`grounded`)."""
    if _GROUND:
        return z3.And(*_instances(variables, body))
    return z3.ForAll(list(variables), body)


def exists(variables: Sequence[Term], body: Formula) -> Formula:
    """∃ variables. body (expanded into a disjunction inside :func:`grounded`)."""
    if _GROUND:
        return z3.Or(*_instances(variables, body))
    return z3.Exists(list(variables), body)


_GROUND: dict[str, list[Term]] = {}
"""The finite universes formulas are being built over, if any (see :func:`grounded`)."""


@contextmanager
def grounded(universes: Mapping[str, Sequence[Element]]) -> Iterator[dict[str, list[Term]]]:
    """Build formulas over finite universes: every quantifier becomes the conjunction (∀) or the
    disjunction (∃) of its instances, one ``substitute`` call each.

    Bounded model checking over a few elements per sort is then quantifier-free, and z3 answers
    in milliseconds where model-based quantifier instantiation over the same finite sorts takes
    seconds. Yields the elements (z3 constants) of each sort.
    """
    _GROUND.update({s: [element(s, n) for n in names] for s, names in universes.items()})
    try:
        yield dict(_GROUND)
    finally:
        _GROUND.clear()


def _instances(variables: Sequence[Term], body: Formula) -> list[Formula]:
    found = [body]
    for v in variables:
        elements = _GROUND[_SORT_NAMES[v.sort().name()]]
        found = [z3.substitute(f, (v, e)) for f in found for e in elements]
    return found


def conj(*parts: Formula) -> Formula:
    """The conjunction of ``parts`` (true when empty)."""
    return z3.And(*parts) if parts else TRUE


def disj(*parts: Formula) -> Formula:
    """The disjunction of ``parts`` (false when empty)."""
    return z3.Or(*parts) if parts else FALSE


def neg(part: Formula) -> Formula:
    """¬part"""
    return z3.Not(part)


def implies(premise: Formula, conclusion: Formula) -> Formula:
    """premise → conclusion"""
    return z3.Implies(premise, conclusion)


def ite(condition: Formula, then: Term, otherwise: Term) -> Term:
    """if condition then ``then`` else ``otherwise``"""
    return z3.If(condition, then, otherwise)


def distinct(*terms: Term) -> Formula:
    """The terms are pairwise different."""
    return z3.Distinct(*terms) if len(terms) > 1 else TRUE


def symbols_of(formula: Formula) -> frozenset[str]:
    """Names of the uninterpreted function symbols ``formula`` mentions."""
    found: set[str] = set()
    seen: set[int] = set()
    todo = [formula]
    while todo:
        expr = todo.pop()
        if expr.get_id() in seen:
            continue
        seen.add(expr.get_id())
        if z3.is_quantifier(expr):
            todo.append(expr.body())
        elif z3.is_app(expr):
            if expr.decl().kind() == z3.Z3_OP_UNINTERPRETED:
                found.add(expr.decl().name())
            todo.extend(expr.children())
    return frozenset(found)


def conjuncts(formula: Formula) -> list[Formula]:
    """The top-level conjuncts of ``formula`` (itself when it is not a conjunction)."""
    return list(formula.children()) if z3.is_and(formula) else [formula]


def boolean(value: bool) -> Formula:
    """The constant true or false."""
    return z3.BoolVal(value)


def sort_name(term: Term) -> str:
    """The name (as in :data:`SORTS`) of a term's sort."""
    return _SORT_NAMES[term.sort().name()]


def simplify(formula: Formula) -> Formula:
    """z3's simplification (used to detect an action that a configuration disables)."""
    return z3.simplify(formula)


def is_false(formula: Formula) -> bool:
    """True when ``formula`` is syntactically false."""
    return bool(z3.is_false(formula))


# ---------------------------------------------------------------------------------------------
# Fresh symbols for the existential parts of a step
# ---------------------------------------------------------------------------------------------


class Locals:
    """Fresh constants and relations for one step (its arguments, new elements, choices).

    Each name gets ``prefix`` so that the steps of an unrolling never share a symbol. ``let``
    names a closed sub-formula with a fresh Boolean constant, so that a fact about the step's
    arguments (e.g. "this worker is an orphan") appears once, outside every quantifier.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.side: list[Formula] = []
        self.symbols: dict[str, Term] = {}

    def const(self, sort: str, name: str) -> Term:
        """A fresh constant of ``sort``."""
        if name in self.symbols:
            raise ValueError(f"local symbol {name!r} is used twice in one step")
        term = z3.Const(f"{self.prefix}{name}", SORTS[sort])
        self.symbols[name] = term
        return term

    def relation(self, name: str, *sorts: str) -> Decl:
        """A fresh relation over ``sorts`` (a second-order choice, e.g. the new sockets)."""
        if name in self.symbols:
            raise ValueError(f"local symbol {name!r} is used twice in one step")
        decl = z3.Function(f"{self.prefix}{name}", *(SORTS[s] for s in sorts), BOOL)
        self.symbols[name] = decl
        return decl

    def let(self, name: str, formula: Formula) -> Formula:
        """A fresh Boolean constant constrained to equal ``formula``."""
        const = self.const("bool", name)
        self.side.append(const == formula)
        return const

    def require(self, *formulas: Formula) -> None:
        """Constrain the step's fresh symbols."""
        self.side.extend(formulas)

    def loose(self) -> list[tuple[Term, str]]:
        """The fresh constants of uninterpreted sorts, with their sort names."""
        found = []
        for term in self.symbols.values():
            if z3.is_const(term):
                sort = _SORT_NAMES.get(term.sort().name())
                if sort in UNINTERPRETED:
                    found.append((term, sort))
        return found


def renamed(symbol: Any, name: str) -> tuple[Any, Any, Any]:
    """A copy of a constant or a relation under ``name``: ``(copy, old decl, replacement)``,
    the last two ready for :func:`substitute_symbols`."""
    decl = symbol if isinstance(symbol, z3.FuncDeclRef) else symbol.decl()
    domain = [decl.domain(i) for i in range(decl.arity())]
    fresh = z3.Function(name, *domain, decl.range())
    args = [z3.Var(i, d) for i, d in enumerate(domain)]
    copy = fresh if isinstance(symbol, z3.FuncDeclRef) else fresh()
    return copy, decl, fresh(*args)


def renaming(old: Vocab, new: Vocab, names: Iterable[str] | None = None) -> list[Pair]:
    """Substitution pairs that rename the state symbols ``names`` (default: all) of ``old`` to
    ``new``'s."""
    pairs = []
    chosen = [s.name for s in STATE_SYMBOLS] if names is None else sorted(names)
    for name in chosen:
        source, target = old.decl(name), new.decl(name)
        args = [z3.Var(i, source.domain(i)) for i in range(source.arity())]
        pairs.append((source, target(*args)))
    return pairs


def substitute_symbols(formula: Formula, pairs: Sequence[Pair]) -> Formula:
    """``formula`` with each function symbol replaced (one C call, see :func:`renamed`)."""
    return z3.substitute_funs(formula, *pairs)


def chosen_of(option: Formula) -> Term:
    """The constant of a :func:`choice` ("it is this one" is ``constant == option``)."""
    return option.arg(0)


def choice(name: str, options: Sequence[str]) -> dict[str, Formula]:
    """A fresh constant that takes exactly one of ``options``: option → "it is this one"."""
    sort, consts = _choice_sort(tuple(options))
    chosen = z3.Const(name, sort)
    return {option: chosen == c for option, c in zip(options, consts, strict=True)}


_CHOICE_SORTS: dict[tuple[str, ...], tuple[Any, list[Any]]] = {}


def _choice_sort(options: tuple[str, ...]) -> tuple[Any, list[Any]]:
    if options not in _CHOICE_SORTS:
        _CHOICE_SORTS[options] = z3.EnumSort(f"Choice{len(_CHOICE_SORTS)}", list(options))
    return _CHOICE_SORTS[options]


# ---------------------------------------------------------------------------------------------
# Solving
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one check said and how long it took."""

    verdict: str
    """``unsat``, ``sat`` or ``unknown``."""
    ms: float
    model: Model | None


class Solver:
    """A z3 solver with a per-check timeout and frames (mypyvy's ``solver.new_frame``)."""

    def __init__(self, timeout_ms: int, *, logic: str | None = None) -> None:
        self._solver = z3.SolverFor(logic) if logic else z3.Solver()
        self._timeout_ms = timeout_ms
        self._solver.set("timeout", timeout_ms)

    def add(self, *formulas: Formula) -> None:
        """Assert ``formulas`` in the current frame."""
        self._solver.add(*formulas)

    @contextmanager
    def frame(self) -> Iterator[None]:
        """A frame: what is asserted inside is retracted on exit, even on error."""
        self._solver.push()
        try:
            yield
        finally:
            self._solver.pop()

    def check(self, *assumptions: Formula, timeout_ms: int | None = None) -> Outcome:
        """Check satisfiability (within ``timeout_ms`` for this check only, when given); a
        model comes with ``sat``."""
        if timeout_ms is not None:
            self._solver.set("timeout", timeout_ms)
        start = time.perf_counter()
        try:
            result = self._solver.check(*assumptions)
        finally:
            if timeout_ms is not None:
                self._solver.set("timeout", self._timeout_ms)
        ms = (time.perf_counter() - start) * 1000
        verdict = str(result)
        model = Model(self._solver.model()) if result == z3.sat else None
        return Outcome(verdict, ms, model)


Element: TypeAlias = str
"""An element of a finite structure, by name (``proc3``, ``sock0``, ``queued``, ``true``)."""


class Model:
    """A z3 model, read as finite universes and symbol extensions over named elements."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def universe(self, sort: str) -> list[Term]:
        """The elements of an uninterpreted sort in this model (at least one)."""
        found = self._model.get_universe(SORTS[sort])
        if found is None:  # the sort does not occur in the query: one element is enough
            return [z3.Const(f"{sort}!any", SORTS[sort])]
        return list(found)

    def value(self, term: Term) -> Term:
        """The value of ``term`` (completed: symbols the model leaves open get a default)."""
        return self._model.eval(term, model_completion=True)

    def holds(self, formula: Formula) -> bool:
        """The truth value of ``formula`` in this model."""
        return bool(z3.is_true(self.value(formula)))

    def table(self, decl: Decl) -> Callable[[tuple[Term, ...]], Term]:
        """A fast lookup of ``decl``'s value at model values, read from its interpretation once
        (falls back to evaluation when the interpretation is not a plain table)."""
        model = self._model
        present = decl.arity() > 0 and z3.Z3_model_has_interp(
            model.ctx.ref(), model.model, decl.ast
        )
        interp = model.get_interp(decl) if present else None
        if interp is None or not isinstance(interp, z3.FuncInterp):
            return lambda args: self.value(decl(*args))
        rows = interp.as_list()
        default = rows[-1]
        if not (z3.is_app(default) and default.num_args() == 0):
            return lambda args: self.value(decl(*args))
        entries = {tuple(a.get_id() for a in row[:-1]): row[-1] for row in rows[:-1]}
        return lambda args: entries.get(tuple(a.get_id() for a in args), default)


def same(left: Term, right: Term) -> bool:
    """True when two model values are the same element."""
    return bool(left.eq(right))


def enum_name(value: Term) -> str:
    """The Python enum value of an enumeration constant (``queued``)."""
    return text(value)


_TEXTS: dict[int, tuple[Term, str]] = {}
"""Term id → the term (kept alive, so its id is not reused) and its printed form."""


def text(term: Term) -> str:
    """``str(term)``, printed once per term (z3's printer is slow, and decoding a trace prints
    the same few model values thousands of times)."""
    found = _TEXTS.get(term.get_id())
    if found is None:
        found = (term, str(term))
        _TEXTS[term.get_id()] = found
    return found[1]


# ---------------------------------------------------------------------------------------------
# Concrete structures as facts
# ---------------------------------------------------------------------------------------------

Extension: TypeAlias = dict[str, frozenset[tuple[Element, ...]]]
"""Symbol name → the tuples where it holds; for a function, the argument tuple plus its value."""


def element(sort: str, name: Element) -> Term:
    """The z3 term for a named element: an enumeration constant, a Boolean, or a fresh constant."""
    if sort in ENUMS:
        return ENUMS[sort][name]
    if sort == "bool":
        return z3.BoolVal(name == "true")
    return z3.Const(f"e!{name}", SORTS[sort])


def closure(sort: str, names: Sequence[Element]) -> list[Formula]:
    """The universe of ``sort`` is exactly these (distinct) elements."""
    consts = [element(sort, n) for n in names]
    x = z3.Const(f"closure_{sort}", SORTS[sort])
    return [distinct(*consts), z3.ForAll([x], z3.Or(*[x == c for c in consts]))]


def pin(
    decl: Decl, symbol: Symbol, positions: Sequence[Sequence[Element]], ext: Any
) -> list[Formula]:
    """Facts fixing ``decl`` to the extension ``ext`` at every tuple drawn from ``positions``
    (one sequence of elements per argument): a relation is false off ``ext``; a function is
    pinned where ``ext`` gives it a value."""
    values = {t[:-1]: t[-1] for t in ext} if symbol.range != "bool" else {}
    facts: list[Formula] = []
    for args in _product([list(p) for p in positions]):
        terms = [element(s, a) for s, a in zip(symbol.domain, args, strict=True)]
        if symbol.range == "bool":
            facts.append(decl(*terms) == z3.BoolVal(tuple(args) in ext))
            continue
        value = values.get(tuple(args))
        if value is not None:
            facts.append(decl(*terms) == element(symbol.range, value))
    return facts


def _product(choices: list[list[Any]]) -> Iterator[list[Any]]:
    if not choices:
        yield []
        return
    for head in choices[0]:
        for rest in _product(choices[1:]):
            yield [head, *rest]


def read(
    model: Model, decl: Decl, symbol: Symbol, universes: dict[str, list[Term]]
) -> set[tuple[Term, ...]]:
    """The extension of ``decl`` in ``model`` as tuples of model values (functions: plus value)."""
    lookup = model.table(decl)
    found: set[tuple[Term, ...]] = set()
    for args in _term_tuples(symbol.domain, universes):
        value = lookup(args)
        if symbol.range == "bool":
            if z3.is_true(value):
                found.add(args)
        else:
            found.add((*args, value))
    return found


def _term_tuples(
    domain: tuple[str, ...], universes: dict[str, list[Term]]
) -> Iterator[tuple[Term, ...]]:
    if not domain:
        yield ()
        return
    for head in universes[domain[0]]:
        for rest in _term_tuples(domain[1:], universes):
            yield (head, *rest)


def static_value(model: Model, name: str, *args: Term) -> Term:
    """The value of a static symbol in ``model``."""
    return model.value(getattr(STATIC, name)(*args))


# ---------------------------------------------------------------------------------------------
# The decidable fragment
# ---------------------------------------------------------------------------------------------

Edge: TypeAlias = tuple[str, str]


def sort_dependencies(formula: Formula) -> frozenset[Edge]:
    """Sort edges a satisfiability check of ``formula`` needs after Skolemisation.

    An existential variable of sort B in the scope of a universal variable of sort A (taking
    polarity into account: a ∀ under a negation is an ∃) gives A → B; a function symbol from A to
    an uninterpreted sort B gives A → B. If the edges are acyclic, the Herbrand universe is finite
    and the check is decidable (stratified EPR).
    """
    edges: set[Edge] = set()
    _walk(formula, 1, (), edges, set())
    return frozenset(edges)


_SORT_NAMES = {v.name(): k for k, v in SORTS.items()}


def _walk(
    expr: Any, polarity: int, universals: tuple[str, ...], edges: set[Edge], seen: set[Any]
) -> None:
    key = (expr.get_id(), polarity, universals)
    if key in seen:
        return
    seen.add(key)
    if z3.is_quantifier(expr):
        _walk_quantifier(expr, polarity, universals, edges, seen)
        return
    if not z3.is_app(expr):
        return
    _function_edges(expr, edges)
    for child, child_polarity in _children(expr, polarity):
        _walk(child, child_polarity, universals, edges, seen)


def _walk_quantifier(
    expr: Any, polarity: int, universals: tuple[str, ...], edges: set[Edge], seen: set[Any]
) -> None:
    sorts = tuple(_SORT_NAMES[expr.var_sort(i).name()] for i in range(expr.num_vars()))
    for sign in (1, -1) if polarity == 0 else (polarity,):
        universal = expr.is_forall() == (sign == 1)
        if universal:
            inner = tuple(sorted({*universals, *sorts}))
        else:
            edges.update((a, b) for a in universals for b in sorts)
            inner = universals
        _walk(expr.body(), sign, inner, edges, seen)


def _function_edges(expr: Any, edges: set[Edge]) -> None:
    decl = expr.decl()
    if decl.kind() != z3.Z3_OP_UNINTERPRETED or decl.arity() == 0:
        return
    target = _SORT_NAMES.get(decl.range().name())
    if target in UNINTERPRETED:
        edges.update((_SORT_NAMES[decl.domain(i).name()], target) for i in range(decl.arity()))


def _children(expr: Any, polarity: int) -> list[tuple[Any, int]]:
    kids = expr.children()
    kind = expr.decl().kind()
    if kind == z3.Z3_OP_NOT:
        return [(kids[0], -polarity)]
    if kind == z3.Z3_OP_IMPLIES:
        return [(kids[0], -polarity), (kids[1], polarity)]
    if kind in (z3.Z3_OP_AND, z3.Z3_OP_OR):
        return [(k, polarity) for k in kids]
    if kind == z3.Z3_OP_ITE:
        return [(kids[0], 0), (kids[1], polarity), (kids[2], polarity)]
    return [(k, 0) for k in kids]


def is_acyclic(edges: Iterable[Edge]) -> bool:
    """True when the sort graph has no cycle (self-loops included)."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}

    def visit(node: str) -> bool:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1 or (state.get(nxt) is None and not visit(nxt)):
                return False
        state[node] = 2
        return True

    return all(state.get(n) is not None or visit(n) for n in list(graph))
