"""Finite structures: the bridge between Python states and z3 states, both ways.

A :class:`Structure` is a finite first-order state over the encoding's vocabulary, with named
elements (``proc3``, ``sock0``, ``conn1``, ``slot0``, ``gen2``). :func:`abstract` maps a concrete
:class:`~forkshare.model.state.System` to one (the abstraction the proofs are about);
:func:`decode` reads one out of a z3 model (a counterexample); :func:`facts` turns one into z3
facts over a vocabulary (the link test evaluates transition and invariant formulas on them);
:func:`describe` prints one in the style of :mod:`forkshare.model.trace_text`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from forkshare.model.config import Config
from forkshare.model.state import System
from forkshare.proofs.encoding import (
    STATE_SYMBOLS,
    STATIC,
    STATIC_SYMBOLS,
    SYMBOLS,
    UNINTERPRETED,
    Element,
    Formula,
    Model,
    Term,
    Vocab,
    closure,
    enum_name,
    pin,
    read,
    text,
)
from forkshare.proofs.errors import NotRepresentableError

Facts = Mapping[str, frozenset[tuple[Element, ...]]]


@dataclass(frozen=True, slots=True)
class Structure:
    """Named elements per uninterpreted sort and the extension of every symbol."""

    universes: Mapping[str, tuple[Element, ...]]
    facts: Facts

    def holds(self, name: str, *args: Element) -> bool:
        """True when the tuple is in the extension of relation ``name``."""
        return args in self.facts[name]

    def value(self, name: str, *args: Element) -> Element | None:
        """The value of function ``name`` at ``args`` (None where it is not given)."""
        return next((t[-1] for t in self.facts[name] if t[:-1] == args), None)

    def present(self, sort: str) -> tuple[Element, ...]:
        """The elements of ``sort`` that are there (``p_in``/``s_in``/``c_in``)."""
        marker = {"proc": "p_in", "sock": "s_in", "conn": "c_in"}.get(sort)
        names = self.universes[sort]
        return names if marker is None else tuple(n for n in names if self.holds(marker, n))


# ---------------------------------------------------------------------------------------------
# Python state → structure
# ---------------------------------------------------------------------------------------------


def universes_for(config: Config, systems: Iterable[System]) -> dict[str, tuple[Element, ...]]:
    """Universes big enough for every id the systems mention (a pair of states must share them)."""
    pids: set[int] = set()
    sids: set[int] = set()
    cids: set[int] = set()
    gens = {1}
    for system in systems:
        pids |= _pids(system)
        sids |= {lst.sid for lst in system.listeners}
        sids |= {sid for p in system.processes for sid in p.fds}
        cids |= {c.cid for c in system.connections}
        cids |= {cid for lst in system.listeners for cid in lst.queue}
        gens |= {p.generation for p in system.processes}
    return {
        "proc": tuple(f"proc{p}" for p in sorted(pids)) or ("proc0",),
        "sock": tuple(f"sock{s}" for s in sorted(sids)) or ("sock0",),
        "conn": tuple(f"conn{c}" for c in sorted(cids)) or ("conn0",),
        "slot": tuple(f"slot{i}" for i in range(config.workers)),
        "gen": tuple(f"gen{g}" for g in range(1, max(gens) + 1)),
    }


def _pids(system: System) -> set[int]:
    pids = {p.pid for p in system.processes} | {p.parent for p in system.processes}
    pids |= {c.owner for c in system.connections} | {system.mutex}
    return pids - {0}


def abstract(
    config: Config, system: System, universes: Mapping[str, tuple[Element, ...]]
) -> Structure:
    """The structure of a concrete state (see :mod:`forkshare.proofs.encoding`, Discussion).

    Raises:
        NotRepresentableError: the state has a shape no reachable state has and the encoding
            cannot express (a socket on another port or with another backlog, a worker
            without a slot, …).
    """
    _check_representable(config, system)
    facts: dict[str, set[tuple[Element, ...]]] = {s.name: set() for s in STATE_SYMBOLS}
    _process_facts(system, facts)
    _socket_facts(system, facts)
    _connection_facts(system, facts)
    if system.mutex:
        facts["locked"].add(())
        facts["holder"].add((f"proc{system.mutex}",))
    if system.usage.shutdowns:
        facts["shut_down_once"].add(())
    _static_facts(universes, facts)
    return Structure(dict(universes), {k: frozenset(v) for k, v in facts.items()})


def _check_representable(config: Config, system: System) -> None:
    for lst in system.listeners:
        if lst.port != 0 or lst.backlog != config.backlog:
            raise NotRepresentableError(
                f"sock{lst.sid} is not on port 0 with the configured backlog"
            )
        if lst.reuseport and lst.slot < 0:
            raise NotRepresentableError(f"reuseport sock{lst.sid} has no slot")
    for proc in system.processes:
        if proc.is_worker and not 0 <= proc.slot < config.workers:
            raise NotRepresentableError(f"worker{proc.pid} has slot {proc.slot}")
        if proc.generation < 1:
            raise NotRepresentableError(f"proc{proc.pid} has generation {proc.generation}")
    for conn in system.connections:
        if conn.fate.value == "queued" and conn.listener < 0:
            raise NotRepresentableError(f"conn{conn.cid} is queued on no socket")


def _process_facts(system: System, facts: dict[str, set[tuple[Element, ...]]]) -> None:
    for p in system.processes:
        me = f"proc{p.pid}"
        facts["p_in"].add((me,))
        _flag(facts, "master", p.is_master, me)
        _flag(facts, "helper", p.is_helper, me)
        if p.parent:
            facts["parent"].add((me, f"proc{p.parent}"))
        facts["gen"].add((me, f"gen{p.generation}"))
        if p.is_worker:
            facts["wslot"].add((me, f"slot{p.slot}"))
        facts["phase"].add((me, p.phase.value))
        _flag(facts, "stopped", p.stopped, me)
        facts["holds"] |= {(me, f"sock{sid}") for sid in p.fds}
        _flag(facts, "holds_mutex", p.holds_mutex, me)
        _flag(facts, "quit", p.quit_requested, me)
        _flag(facts, "terminate", p.terminate_requested, me)
        _flag(facts, "orphan_accepted", p.orphan_accepts > 0, me)
        _flag(facts, "master_killed", p.master_killed, me)
        facts["shutdown"].add((me, p.shutdown.value))
        facts["abandoned"] |= {(me, f"slot{i}") for i in p.abandoned}


def _socket_facts(system: System, facts: dict[str, set[tuple[Element, ...]]]) -> None:
    for lst in system.listeners:
        me = f"sock{lst.sid}"
        facts["s_in"].add((me,))
        _flag(facts, "reuseport", lst.reuseport, me)
        if lst.slot >= 0:
            facts["sslot"].add((me, f"slot{lst.slot}"))
        _flag(facts, "s_by_master", lst.by_master, me)
        _flag(facts, "listening", lst.listening, me)
        _flag(facts, "closed_early", lst.closed_early, me)
        facts["in_queue"] |= {(f"conn{cid}", me) for cid in lst.queue}
        facts["ahead"] |= {
            (f"conn{a}", f"conn{b}") for k, a in enumerate(lst.queue) for b in lst.queue[k + 1 :]
        }


def _connection_facts(system: System, facts: dict[str, set[tuple[Element, ...]]]) -> None:
    for c in system.connections:
        me = f"conn{c.cid}"
        facts["c_in"].add((me,))
        facts["fate"].add((me, c.fate.value))
        if c.listener >= 0:
            facts["arrived_on"].add((me, f"sock{c.listener}"))
        if c.owner:
            facts["owns"].add((me, f"proc{c.owner}"))
        _flag(facts, "accepted_once", c.accepts >= 1, me)
        _flag(facts, "accepted_twice", c.accepts >= 2, me)
        _flag(facts, "c_by_master", c.by_master, me)
        _flag(facts, "requested", c.requested, me)
        _flag(facts, "woke_many", c.wakeups >= 2, me)
        _flag(facts, "held_back", c.held_back, me)


def _flag(facts: dict[str, set[tuple[Element, ...]]], name: str, value: bool, me: Element) -> None:
    if value:
        facts[name].add((me,))


def _static_facts(
    universes: Mapping[str, tuple[Element, ...]], facts: dict[str, set[tuple[Element, ...]]]
) -> None:
    conns, gens = universes["conn"], universes["gen"]
    facts["conn_lt"] = {(a, b) for i, a in enumerate(conns) for b in conns[i + 1 :]}
    facts["gen_lt"] = {(a, b) for i, a in enumerate(gens) for b in gens[i + 1 :]}
    facts["gen_first"] = {("gen1",)}


# ---------------------------------------------------------------------------------------------
# Structure → z3 facts
# ---------------------------------------------------------------------------------------------


def closure_facts(universes: Mapping[str, Sequence[Element]]) -> list[Formula]:
    """Each uninterpreted sort is exactly the structure's elements."""
    return [f for sort in UNINTERPRETED for f in closure(sort, universes[sort])]


_MARKERS = {"proc": "p_in", "sock": "s_in", "conn": "c_in"}

OWNER_ARGUMENT = {"in_queue": 1}
"""Which argument's object a fact belongs to (default the first): a queue belongs to its socket."""


def facts(structure: Structure, vocab: Vocab, *, statics: bool = True) -> list[Formula]:
    """Facts fixing ``vocab`` to the structure wherever the Python state defines it.

    A fact is pinned when the object it belongs to is there (a process in the table, a socket
    created, a connection made); facts about absent objects stay free, exactly like the junk the
    encoding allows on them. Which objects are there (``p_in``, ``s_in``, ``c_in``) is pinned for
    every element; nullary symbols always, the holder only when locked.
    """
    found: list[Formula] = []
    for symbol in STATE_SYMBOLS:
        found += symbol_facts(structure, vocab, symbol.name)
    if statics:
        for symbol in STATIC_SYMBOLS:
            positions = [structure.universes[s] for s in symbol.domain]
            decl = getattr(STATIC, symbol.name)
            found += pin(decl, symbol, positions, structure.facts[symbol.name])
    return found


def symbol_facts(structure: Structure, vocab: Vocab, name: str) -> list[Formula]:
    """The facts of :func:`facts` about state symbol ``name`` alone (which objects are there
    decides where the others are pinned, so a change of ``p_in``, ``s_in``, ``c_in`` or
    ``locked`` changes more than its own facts)."""
    symbol = SYMBOLS[name]
    if name == "holder" and not structure.holds("locked"):
        return []
    positions = (
        [structure.universes[s] for s in symbol.domain]
        if name in _MARKERS.values()
        else _positions(structure, symbol.domain, OWNER_ARGUMENT.get(name, 0))
    )
    return pin(vocab.decl(name), symbol, positions, structure.facts[name])


WIDE_SYMBOLS = frozenset({*_MARKERS.values(), "locked"})
"""Symbols whose change moves where other symbols are pinned (see :func:`symbol_facts`)."""


def _positions(
    structure: Structure, domain: tuple[str, ...], owner: int
) -> list[Sequence[Element]]:
    positions: list[Sequence[Element]] = [structure.universes[s] for s in domain]
    if domain and domain[owner] in ("proc", "sock", "conn"):
        positions[owner] = structure.present(domain[owner])
    return positions


# ---------------------------------------------------------------------------------------------
# z3 model → structure
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Naming:
    """Names for the elements of a z3 model: readable, and stable across the states of a trace."""

    terms: Mapping[str, tuple[Term, ...]]
    names: Mapping[str, Element]
    """``str(model value)`` → element name."""

    def name(self, value: Term) -> Element:
        """The name of a model value (enumeration constants are named by their value)."""
        key = text(value)
        return self.names.get(key, enum_name(value))


def naming(model: Model, vocabs: Sequence[Vocab]) -> Naming:
    """Readable names: processes ``master<k>``/``worker<k>`` by their role in the last state where
    they are in the table, connections by arrival order, generations by number, sockets and slots
    by index."""
    terms = {sort: tuple(model.universe(sort)) for sort in UNINTERPRETED}
    names: dict[str, Element] = {}
    for k, s in enumerate(terms["sock"]):
        names[text(s)] = f"sock{k}"
    for k, i in enumerate(terms["slot"]):
        names[text(i)] = f"slot{k}"
    conns = sorted(terms["conn"], key=lambda c: _rank(model, "conn_lt", c, terms["conn"]))
    for k, c in enumerate(conns):
        names[text(c)] = f"conn{k}"
    first = model.value(STATIC.gen_first())
    for g in terms["gen"]:
        names[text(g)] = f"gen{_generation(model, g, first, terms['gen'])}"
    for k, p in enumerate(terms["proc"]):
        names[text(p)] = f"{_role(model, vocabs, p)}{k + 1}"
    return Naming(terms, names)


def _rank(model: Model, order: str, x: Term, universe: Sequence[Term]) -> int:
    lt = getattr(STATIC, order)
    return sum(1 for y in universe if model.holds(lt(y, x)))


def _generation(model: Model, g: Term, first: Term, universe: Sequence[Term]) -> int:
    """Generation number: 1 for ``gen_first``, counted along the order from there."""
    lt = STATIC.gen_lt

    def between(low: Term, high: Term) -> int:
        return sum(1 for h in universe if model.holds(lt(low, h)) and not model.holds(lt(high, h)))

    if model.holds(lt(g, first)):
        return 1 - between(g, first)
    return 1 + between(first, g)


def _role(model: Model, vocabs: Sequence[Vocab], p: Term) -> str:
    for vocab in reversed(vocabs):
        if model.holds(vocab.p_in(p)):
            if model.holds(vocab.master(p)):
                return "master"
            return "helper" if model.holds(vocab.helper(p)) else "worker"
    return "proc"


def decode(model: Model, vocab: Vocab, names: Naming) -> Structure:
    """The state ``vocab`` denotes in ``model``, with the given element names.

    Only facts about the elements that are there are read (junk on absent elements is left
    out: no formula can see it).
    """
    universes = {sort: tuple(names.name(t) for t in names.terms[sort]) for sort in UNINTERPRETED}
    everything = {sort: list(names.terms[sort]) for sort in UNINTERPRETED}
    present = dict(everything)
    found: dict[str, frozenset[tuple[Element, ...]]] = {}
    for sort, marker in _MARKERS.items():
        ext = read(model, vocab.decl(marker), SYMBOLS[marker], everything)
        found[marker] = frozenset((names.name(row[0]),) for row in ext)
        present[sort] = [t for t in everything[sort] if (t,) in ext]
    for symbol in STATE_SYMBOLS:
        if symbol.name not in found:
            ext = read(model, vocab.decl(symbol.name), symbol, present)
            found[symbol.name] = frozenset(tuple(names.name(t) for t in row) for row in ext)
    for symbol in STATIC_SYMBOLS:
        ext = read(model, getattr(STATIC, symbol.name), symbol, everything)
        found[symbol.name] = frozenset(tuple(names.name(t) for t in row) for row in ext)
    return Structure(universes, found)


# ---------------------------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------------------------


def describe(structure: Structure) -> str:
    """One line: processes | sockets | connections | mutex (only what is there)."""
    parts = [
        " ".join(_describe_process(structure, p) for p in structure.present("proc"))
        or "no process",
        " ".join(_describe_socket(structure, s) for s in structure.present("sock")) or "no socket",
    ]
    conns = structure.present("conn")
    if conns:
        parts.append(" ".join(_describe_connection(structure, c) for c in conns))
    if structure.holds("locked"):
        holder = structure.value("holder")
        gone = "" if holder and structure.holds("p_in", holder) else " (gone)"
        parts.append(f"mutex={holder}{gone}")
    if structure.holds("shut_down_once"):
        parts.append("shut down once")
    return " | ".join(parts)


def _describe_process(st: Structure, p: Element) -> str:
    fds = ",".join(s for s in st.universes["sock"] if st.holds("holds", p, s))
    marks = []
    phase = st.value("phase", p)
    if phase != "running":
        marks.append(str(phase))
    for flag, label in _PROCESS_MARKS:
        if st.holds(flag, p):
            marks.append(label)
    down = st.value("shutdown", p)
    if st.holds("master", p) and down != "none":
        marks.append(f"shutdown={down}")
    parents = [y for y in st.universes["proc"] if st.holds("parent", p, y)]
    marks.append(f"parent={parents[0]}" if parents else "no-parent")
    slots = [i for i in st.universes["slot"] if st.holds("wslot", p, i)]
    marks.append(f"{st.value('gen', p)}" + (f"/{slots[0]}" if slots else ""))
    return f"{p}{{{fds}}}" + "".join(f"·{m}" for m in marks)


_PROCESS_MARKS = (
    ("helper", "helper"),
    ("stopped", "stopped"),
    ("quit", "told-quit"),
    ("terminate", "term-pending"),
    ("holds_mutex", "mutex"),
    ("orphan_accepted", "accepted-as-orphan"),
    ("master_killed", "master-killed"),
)


def _describe_socket(st: Structure, s: Element) -> str:
    slots = [i for i in st.universes["slot"] if st.holds("sslot", s, i)]
    kind = ("reuseport" + (f"/{slots[0]}" if slots else "")) if st.holds("reuseport", s) else ""
    extra = "·closed-early" if st.holds("closed_early", s) else ""
    if not st.holds("listening", s):
        return f"{s} closed{extra}"
    waiting = [c for c in st.universes["conn"] if st.holds("in_queue", c, s)]
    waiting.sort(key=lambda c: sum(1 for d in waiting if st.holds("ahead", d, c)))
    queue = ",".join(waiting)
    return f"{s}{'·' + kind if kind else ''} q=[{queue}]{extra}"


def _describe_connection(st: Structure, c: Element) -> str:
    fate = st.value("fate", c)
    owners = [p for p in st.universes["proc"] if st.holds("owns", c, p)]
    text = f"{c} {fate}"
    if fate == "accepted" and owners:
        text += f"@{owners[0]}"
    if st.holds("accepted_twice", c):
        text += "·accepted-twice"
    if st.holds("woke_many", c):
        text += "·woke-many"
    return text
