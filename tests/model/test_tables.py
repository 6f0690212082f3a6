"""The action and invariant tables are the single source: well formed, named as STYLE.md asks."""

from __future__ import annotations

import inspect

from forkshare.model import actions
from forkshare.model.actions import ACTIONS
from forkshare.model.invariants import INVARIANTS
from forkshare.model.table import Kind


def test_every_action_is_a_guard_named_can_and_an_effect_named_after_it() -> None:
    for name, action in ACTIONS.items():
        assert action.effect.__name__ == name
        assert action.guard.__name__ == f"can_{name}"
        assert inspect.getdoc(action.guard), f"{name}'s guard states no contract"
        assert inspect.getdoc(action.effect), f"{name}'s effect states no contract"


def test_every_guard_and_effect_in_the_module_is_in_the_table() -> None:
    guards = {n[4:] for n, f in vars(actions).items() if n.startswith("can_") and callable(f)}
    assert guards - {"command"} == set(ACTIONS)


def test_both_kinds_of_action_exist() -> None:
    kinds = {a.kind for a in ACTIONS.values()}
    assert kinds == {Kind.ENVIRONMENT, Kind.INTERNAL}


def test_every_invariant_has_a_one_line_claim_and_a_docstring() -> None:
    for name, inv in INVARIANTS.items():
        assert inv.holds.__name__ == name
        assert inv.claim.endswith(".")
        assert "\n" not in inv.claim
        assert inspect.getdoc(inv.holds)


def test_the_type_invariant_comes_first() -> None:
    assert next(iter(INVARIANTS)) == "type_ok"
