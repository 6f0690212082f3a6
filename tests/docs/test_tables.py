"""The docs' tables come from the code, and a table that cannot be rendered fails the build.

``docs/_ext/forkshare_spec.py`` and ``forkshare_verifier.py`` read the model's and the verifier's
tables at build time through :func:`code_table`, which turns a missing or empty table into the
directive's error (a build error under ``-W``), never a page without its table. The build itself
(``make docs``) is the test that every table renders; these check the failure path, which a green
build never takes.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

from forkshare.conformance.verify.profile import KEYS
from forkshare.model.freedoms import FREEDOMS
from forkshare.model.invariants import INVARIANTS
from forkshare.model.liveness import LIVENESS
from forkshare.model.monitors import MONITORS
from tests.docs.rst_blocks import DOCS


class DirectiveError(Exception):
    """What a directive's ``error()`` returns; Sphinx reports it and ``-W`` fails the build."""


class FakeDirective:
    """Only the part of a Sphinx directive that :func:`code_table` uses."""

    def error(self, message: str) -> DirectiveError:
        return DirectiveError(message)


def spec() -> ModuleType:
    if str(DOCS / "_ext") not in sys.path:
        sys.path.insert(0, str(DOCS / "_ext"))
    return importlib.import_module("forkshare_spec")


@pytest.mark.parametrize(
    ("module", "name", "table"),
    [
        ("forkshare.model.freedoms", "FREEDOMS", FREEDOMS),
        ("forkshare.model.liveness", "LIVENESS", LIVENESS),
        ("forkshare.model.monitors", "MONITORS", MONITORS),
        ("forkshare.conformance.verify.profile", "KEYS", KEYS),
    ],
)
def test_each_table_the_docs_render_is_read_from_the_code(
    module: str, name: str, table: dict[str, object]
) -> None:
    assert spec().code_table(FakeDirective(), module, name) == table


def test_a_table_that_does_not_exist_is_a_build_error_naming_it() -> None:
    with pytest.raises(DirectiveError, match=r"forkshare\.model\.freedoms\.WITNESSES"):
        spec().code_table(FakeDirective(), "forkshare.model.freedoms", "WITNESSES")


def test_a_module_that_does_not_exist_is_a_build_error() -> None:
    with pytest.raises(DirectiveError, match="cannot be rendered"):
        spec().code_table(FakeDirective(), "forkshare.model.no_such_module", "TABLE")


def test_an_empty_table_is_a_build_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "emptied_table.py").write_text("TABLE: dict[str, object] = {}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(DirectiveError, match="is empty"):
        spec().code_table(FakeDirective(), "emptied_table", "TABLE")


def test_every_invariant_has_a_monitor_row() -> None:
    # The monitors directive fails the build on a missing row; the model's own test keys them too.
    assert list(MONITORS) == list(INVARIANTS)
