"""Evaluating the z3 formulas on concrete states: the link between the proofs and the model.

Everything here goes through the package's facade (``forkshare.proofs.encoding``): the states are
abstracted into structures, their facts pinned over finite universes, and each question is a
quantifier-free check.
"""

from __future__ import annotations

from dataclasses import replace

from forkshare.model.actions import ACTIONS
from forkshare.model.config import Config
from forkshare.model.state import System
from forkshare.proofs.claims import CLAIMS
from forkshare.proofs.encoding import (
    STATE_SYMBOLS,
    Formula,
    Locals,
    Solver,
    Vocab,
    conj,
    distinct,
    element,
    grounded,
    one_of,
    static_axioms,
)
from forkshare.proofs.lemmas import LEMMAS
from forkshare.proofs.structure import (
    WIDE_SYMBOLS,
    Structure,
    abstract,
    facts,
    symbol_facts,
    universes_for,
)
from forkshare.proofs.transitions import PARAM_SORTS, arguments, effect, frame, transition

ALL_SYMBOLS = frozenset(s.name for s in STATE_SYMBOLS)
PREFIX = {"proc": "proc", "sock": "sock", "conn": "conn", "slot": "slot"}


def _closed(v: Vocab, universes: dict[str, tuple[str, ...]]) -> list[Formula]:
    found = [one_of(v.holder(), "proc")]
    found += [one_of(v.gen(element("proc", p)), "gen") for p in universes["proc"]]
    return found


class TransitionCheck:
    """Is ``post`` a successor of ``pre`` by action ``name`` with ``args``, per the z3 formula?"""

    def __init__(
        self, config: Config, pre: System, name: str, args: tuple[int, ...], posts: list[System]
    ) -> None:
        self.universes = universes_for(config, [pre, *posts])
        self.config = config
        self.pre_vocab, self.post_vocab = Vocab.named("<pre>"), Vocab.named("<post>")
        self.solver = Solver(5000, logic="QF_UF")
        with grounded(self.universes) as elements:
            local = Locals("link!")
            zargs = arguments(name, local)
            step = effect(config, name, self.pre_vocab, zargs, local)
            formula = conj(
                transition(step, self.pre_vocab, self.post_vocab, local),
                frame(self.pre_vocab, self.post_vocab, ALL_SYMBOLS - set(step.updates)),
            )
            self.solver.add(*[distinct(*terms) for terms in elements.values()])
            self.solver.add(*static_axioms(), formula)
            self.solver.add(*[one_of(t, sort) for t, sort in local.loose()])
            self.solver.add(
                *_closed(self.pre_vocab, self.universes), *_closed(self.post_vocab, self.universes)
            )
            self.solver.add(*facts(abstract(config, pre, self.universes), self.pre_vocab))
            for param, term, value in zip(ACTIONS[name].params, zargs, args, strict=True):
                sort = PARAM_SORTS[param]
                self.solver.add(term == element(sort, f"{PREFIX[sort]}{value}"))
        self._base: tuple[Structure, dict[str, list[Formula]]] | None = None

    def structure(self, system: System) -> Structure:
        """The abstraction of a candidate successor over the shared universes."""
        return abstract(self.config, system, self.universes)

    def accepts(self, post: Structure) -> bool:
        """True when the transition formula holds between the pre-state and ``post``."""
        return self._sat(facts(post, self.post_vocab, statics=False))

    def accepts_change(self, base: Structure, changed: Structure, symbol: str) -> bool:
        """:meth:`accepts` for ``changed``, which differs from ``base`` in ``symbol`` only (the
        facts of ``base`` about the other symbols are built once)."""
        if symbol in WIDE_SYMBOLS:
            return self.accepts(changed)
        if self._base is None or self._base[0] is not base:
            per_symbol = {
                s.name: symbol_facts(base, self.post_vocab, s.name) for s in STATE_SYMBOLS
            }
            self._base = (base, per_symbol)
        rest = [f for name, fs in self._base[1].items() if name != symbol for f in fs]
        return self._sat([*rest, *symbol_facts(changed, self.post_vocab, symbol)])

    def _sat(self, assumptions: list[Formula]) -> bool:
        return self.solver.check(*assumptions).verdict == "sat"


def claim_agrees(config: Config, system: System, name: str, expected: bool) -> bool:
    """True when the z3 formula of invariant (or lemma) ``name`` is determined by the state's
    facts and equals ``expected``."""
    universes = universes_for(config, [system])
    v = Vocab.named("<s>")
    solver = Solver(5000, logic="QF_UF")
    with grounded(universes) as elements:
        build = CLAIMS.get(name) or LEMMAS[name].formula
        solver.add(*[distinct(*terms) for terms in elements.values()], *static_axioms())
        solver.add(*_closed(v, universes), *facts(abstract(config, system, universes), v))
        solver.add(build(config, v) != expected)
    return solver.check().verdict == "unsat"


def flipped(
    structure: Structure, symbol: str, row: tuple[str, ...], value: str | None
) -> Structure:
    """``structure`` with one fact changed: a relation tuple toggled, or a function's value set."""
    rows = set(structure.facts[symbol])
    if value is None:
        rows ^= {row}
    else:
        rows = {r for r in rows if r[:-1] != row} | {(*row, value)}
    return replace(structure, facts={**structure.facts, symbol: frozenset(rows)})
