"""The model's tables are the single source: every name has exactly one encoding."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from forkshare.model.actions import ACTIONS
from forkshare.model.invariants import INVARIANTS
from forkshare.proofs.bmc import BUDGETS
from forkshare.proofs.claims import CLAIMS
from forkshare.proofs.issues import ISSUES
from forkshare.proofs.lemmas import LEMMAS
from forkshare.proofs.progress import PROGRESS
from forkshare.proofs.transitions import TRANSITIONS

PROOFS = Path(__file__).resolve().parents[2] / "proofs"


def test_every_action_has_exactly_one_transition_formula() -> None:
    assert list(TRANSITIONS) == list(ACTIONS)


def test_every_invariant_has_exactly_one_formula() -> None:
    assert list(CLAIMS) == list(INVARIANTS)


def test_lemma_and_progress_names_never_shadow_an_invariant() -> None:
    names = [*INVARIANTS, *LEMMAS, *PROGRESS]
    assert len(names) == len(set(names))


def test_every_known_model_issue_names_an_invariant_or_a_progress_fact() -> None:
    for issue in ISSUES:
        assert issue.goal in INVARIANTS or issue.goal in PROGRESS, issue.name


def test_every_lemma_says_why_it_is_needed() -> None:
    for lemma in LEMMAS.values():
        assert lemma.why, lemma.name
        assert lemma.formula.__doc__, lemma.name


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_only_the_encoding_module_imports_z3() -> None:
    importers = sorted(p.name for p in PROOFS.glob("*.py") if "z3" in _imports(p))
    assert importers == ["encoding.py"]


def test_the_budgets_a_search_honours_are_the_ones_the_guards_read() -> None:
    """``bmc.BUDGETS`` (which environment action a budget of 0 rules out) is the list of
    ``config.bounds.<field>`` reads in the Python guards, no more, no less."""
    read = {}
    for name, action in ACTIONS.items():
        fields = set(re.findall(r"config\.bounds\.(\w+)", inspect.getsource(action.guard)))
        if fields:
            (read[name],) = fields
    assert read == BUDGETS
