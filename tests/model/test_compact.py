"""The compact explorer explores the model's own transition system: the same states, the same
transitions, the same violations, state by state.

Three layers: every state of every configuration of the corpus (``tests/model/corpus.py``) is
re-expanded with the model's actions and re-checked with its invariants (the search's audit, at
every state); for every mode and every variant, the reachable sets of the compact explorer and of
the reference explorer (the one before compact states) are equal as sets of ``System`` values,
with equal counts of transitions, actions fired and violations; and the corpus is shown to reach
every action and every value of every configuration field, so the first layer misses none.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass, fields

import pytest

from forkshare.model import compact_invariants
from forkshare.model.actions import ACTIONS
from forkshare.model.compact_actions import TWINS
from forkshare.model.compact_invariants import CHECKS, READS
from forkshare.model.compact_rules import (
    BOUNDS_FIELDS,
    CONFIG_FIELDS,
    Rules,
    UnknownConfigFieldError,
)
from forkshare.model.compact_search import (
    Expander,
    TwinDivergenceError,
    initial_compact,
    model_successors,
    search,
)
from forkshare.model.compact_state import (
    CONNECTION_FIELDS,
    LISTENER_FIELDS,
    PROCESS_FIELDS,
    SYSTEM_FIELDS,
    USAGE_FIELDS,
    decode,
)
from forkshare.model.compact_symmetry import canonical_of
from forkshare.model.config import Bounds, Config, Mode
from forkshare.model.explorer import explore, explore_reference
from forkshare.model.invariants import INVARIANTS
from forkshare.model.state import Connection, Listener, Process, System, Usage
from forkshare.model.symmetry import canonical
from forkshare.model.variants import VARIANTS
from tests.model.corpus import BUDGETS, corpus

CORPUS = corpus()

SMALL = BUDGETS["accepts"]


@pytest.mark.parametrize(
    ("record", "names"),
    [
        (Process, PROCESS_FIELDS),
        (Listener, LISTENER_FIELDS),
        (Connection, CONNECTION_FIELDS),
        (Usage, USAGE_FIELDS),
        (System, SYSTEM_FIELDS),
    ],
)
def test_the_compact_form_holds_every_field_of_every_record(
    record: type, names: tuple[str, ...]
) -> None:
    assert {f.name for f in fields(record) if f.init} == set(names)


def test_the_compact_actions_know_every_configuration_field() -> None:
    assert {f.name for f in fields(Config)} == set(CONFIG_FIELDS)
    assert {f"bounds.{f.name}" for f in fields(Bounds)} == set(BOUNDS_FIELDS)


def test_every_action_and_every_invariant_has_a_twin_in_table_order() -> None:
    assert list(TWINS) == list(ACTIONS)
    assert list(CHECKS) == list(INVARIANTS)
    assert set(READS) == set(INVARIANTS)


def test_each_invariant_twin_reads_the_parts_it_declares() -> None:
    """The explorer remembers verdicts by the parts a check declares it reads; a check that
    read more than it declares would be remembered wrongly. The parts are read off the source."""
    parts = {"S_PROCESSES", "S_LISTENERS", "S_CONNECTIONS", "S_MUTEX", "S_USAGE"}
    module = ast.parse(inspect.getsource(compact_invariants))
    functions = {node.name: node for node in module.body if isinstance(node, ast.FunctionDef)}

    def read_by(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        names = {n.id for n in ast.walk(functions[name]) if isinstance(n, ast.Name)}
        called = {n for n in names if n in functions and n not in seen and n != name}
        found = names & parts
        for helper in called:
            found |= read_by(helper, seen | {name})
        return found

    for name, declared in READS.items():
        expected = {getattr(compact_invariants, part) for part in read_by(name)}
        assert expected == set(declared), name


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_the_compact_actions_agree_with_the_model_in_every_reachable_state(name: str) -> None:
    """Every state is re-expanded by the model: same (action, arguments, canonical successor)
    list in the same order, and the same verdict of every invariant."""
    found = search(CORPUS[name], audit_every=1)
    assert found.complete
    assert found.states > 1


def test_the_corpus_fires_every_action() -> None:
    fired: set[str] = set()
    for config in CORPUS.values():
        fired |= set(search(config).fired)
    assert fired == set(ACTIONS)


def test_the_corpus_takes_every_configuration_field_through_two_values() -> None:
    for field in fields(Config):
        values = {repr(getattr(config, field.name)) for config in CORPUS.values()}
        assert len(values) >= 2, field.name
    for field in fields(Bounds):
        assert any(getattr(config.bounds, field.name) for config in CORPUS.values()), field.name


RUNS = {f"mode-{mode.value}": Config(mode=mode, workers=2, bounds=SMALL) for mode in Mode} | {
    f"variant-{name}": variant.apply(Config(workers=2, bounds=variant.bounds))
    for name, variant in VARIANTS.items()
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_the_compact_and_the_reference_explorer_find_the_same_states(name: str) -> None:
    config = RUNS[name]
    fast = explore(config, keep_states=True)
    reference = explore_reference(config, keep_states=True)
    assert fast.reachable == reference.reachable
    assert fast.states == reference.states
    assert fast.transitions == reference.transitions
    assert fast.actions_fired == reference.actions_fired
    assert fast.max_wakeups == reference.max_wakeups
    assert fast.violations.keys() == reference.violations.keys()
    for invariant, violation in reference.violations.items():
        labels = [step.label for step in fast.violations[invariant].trace]
        assert labels == [step.label for step in violation.trace]


def test_the_compact_form_of_a_state_stands_for_the_models_canonical_state() -> None:
    """``decode(canonical_of(s)) == canonical(s)[0]``, also for the concrete (not yet renamed)
    successors the model's actions produce; and ``canonical_of(decode(c)) == c``."""
    config = Config(mode=Mode.MUTEX, workers=2, bounds=Bounds(connections=2, kills=1, reloads=1))
    reachable = explore_reference(config, max_states=1500, keep_states=True).reachable
    assert reachable is not None
    for state in reachable:
        assert canonical_of(decode(canonical_of(state))) == canonical_of(state)
        for action in ACTIONS.values():
            for args in action.arguments(config, state):
                for succ in action.successors(config, state, args):
                    assert decode(canonical_of(succ)) == canonical(succ)[0]


@pytest.mark.parametrize("mode", [Mode.EXCLUSIVE, Mode.REUSEPORT])
def test_the_parallel_search_finds_what_one_process_finds(mode: Mode) -> None:
    config = Config(mode=mode, workers=2, bounds=BUDGETS["reload"])
    one = explore(config, keep_states=True)
    two = explore(config, processes=2, keep_states=True)
    assert two.reachable == one.reachable
    assert (two.states, two.transitions, two.actions_fired) == (
        one.states,
        one.transitions,
        one.actions_fired,
    )


def test_the_parallel_search_finds_shortest_counterexamples() -> None:
    variant = VARIANTS["private-reuseport"]
    config = variant.apply(Config(workers=2, bounds=variant.bounds))
    one = explore(config)
    three = explore(config, processes=3)
    assert three.violations.keys() == one.violations.keys()
    for name, violation in one.violations.items():
        assert len(three.violations[name].trace) == len(violation.trace)
        assert not INVARIANTS[name].holds(config, three.violations[name].trace[-1].state)


def test_the_audit_stops_a_twin_that_left_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """A twin that loses successors (as one would after the model's action changed) is caught."""
    serve = TWINS["serve_request"]
    monkeypatch.setitem(TWINS, "serve_request", lambda rules, state, out: None)
    config = Config(mode=Mode.EXCLUSIVE, workers=1, bounds=Bounds(connections=1, reloads=0))
    with pytest.raises(TwinDivergenceError, match="serve_request"):
        search(config, audit_every=1)
    monkeypatch.setitem(TWINS, "serve_request", serve)
    assert search(config, audit_every=1).complete


def test_an_action_without_a_twin_runs_through_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config(mode=Mode.EXCLUSIVE, workers=2, bounds=SMALL)
    expected = search(config)
    monkeypatch.delitem(TWINS, "accept")
    found = search(config, audit_every=1)
    assert (found.states, found.transitions) == (expected.states, expected.transitions)
    state = initial_compact()
    assert Expander(config).successors(state) == model_successors(config, decode(state))


def test_a_configuration_field_the_twins_do_not_know_falls_back_to_the_reference() -> None:
    @dataclass(frozen=True, slots=True)
    class Extended(Config):
        novelty: bool = True

    config = Extended(mode=Mode.EXCLUSIVE, workers=1, bounds=Bounds(connections=1, reloads=0))
    with pytest.raises(UnknownConfigFieldError, match="novelty"):
        Rules(config)
    assert explore(config).states == explore_reference(config).states
