"""The verifier keeps no second list: its performers, its diagnosis and its roles are tied to the
model's tables (STYLE.md rule 2), and it decides by checks, not by catching lookup failures."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from forkshare.conformance.observe.role import Role
from forkshare.conformance.verify.abstraction import role_of
from forkshare.conformance.verify.target_backend import PERFORMERS
from forkshare.conformance.verify.verify import alternatives
from forkshare.model.actions import ACTIONS
from forkshare.model.config import Bounds, Config, Mode, ParentDeath
from forkshare.model.table import Kind
from forkshare.model.variants import VARIANTS
from tests.model.test_kernel import run

CONFORMANCE = Path(__file__).resolve().parents[2] / "conformance"


def test_every_environment_action_has_exactly_one_performer() -> None:
    environment = {name for name, action in ACTIONS.items() if action.kind is Kind.ENVIRONMENT}
    assert set(PERFORMERS) - environment == set(), "a performer for no environment action"
    assert environment - set(PERFORMERS) == set(), "an environment action nobody performs"


@pytest.mark.parametrize("mode", list(Mode))
def test_the_diagnosis_tries_every_unsafe_variant_that_fits_the_claimed_mode(mode: Mode) -> None:
    config = Config(mode=mode)
    tried = [(alternative, prop) for alternative, prop, _ in alternatives(config)]
    expected = [
        (variant.apply_to(config), variant.expected)
        for variant in VARIANTS.values()
        if variant.fits(mode)
    ]
    assert tried[1:] == expected
    assert tried[0] == (
        Config(mode=mode, parent_death=ParentDeath.ORPHANS_SERVE),
        "orphans_exit_with_master",
    )


def test_the_diagnosis_skips_a_variant_the_claim_already_is() -> None:
    claimed = Config(mode=Mode.REUSEPORT, private_reuseport=True)
    assert "no_queued_connection_lost" not in [prop for _, prop, _ in alternatives(claimed)]


def test_model_roles_map_onto_the_observers_master_worker_and_orphan() -> None:
    config = Config(mode=Mode.EXCLUSIVE, workers=1, bounds=Bounds(master_kills=1))
    running = run(config, ("start_master", ()), ("spawn_worker", (1, 0)))
    orphaned = run(config, ("start_master", ()), ("spawn_worker", (1, 0)), ("kill_master", (1,)))
    assert [role_of(running, 1), role_of(running, 2)] == [Role.MASTER, Role.WORKER]
    assert role_of(orphaned, 2) is Role.ORPHAN


def _caught(handler: ast.ExceptHandler) -> set[str]:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return {kind.id for kind in kinds if isinstance(kind, ast.Name)}


def test_no_verifier_module_decides_by_catching_a_lookup_or_assertion_error() -> None:
    offenders = [
        f"{path.relative_to(CONFORMANCE)}:{node.lineno}"
        for path in sorted(CONFORMANCE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ExceptHandler) and _caught(node) & {"LookupError", "AssertionError"}
    ]
    assert offenders == []


def test_an_orphans_serve_claim_is_not_second_guessed_by_the_diagnosis() -> None:
    claimed = Config(mode=Mode.EXCLUSIVE, parent_death=ParentDeath.ORPHANS_SERVE)
    assert "orphans_exit_with_master" not in [prop for _, prop, _ in alternatives(claimed)]
