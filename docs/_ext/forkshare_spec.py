"""Sphinx directives for the specification's own tables: freedoms, timed properties, monitors.

The model is a specification (issue 8): it says what must never happen (the invariants), allows
every way correct servers get there (the freedoms), adds what must happen in time (the timed
properties), and says what an observer outside the server can check of each invariant (the
monitors). Each is one table in :mod:`forkshare.model`; these directives render them.

==============================  ================================================================
directive                       renders
==============================  ================================================================
``.. forkshare-freedoms::``     :data:`forkshare.model.freedoms.FREEDOMS`: id (linked to its
                                fact), title, one way, the other way, how the model allows it,
                                and the witness: what its last state shows, and its steps
``.. forkshare-liveness::``     :data:`forkshare.model.liveness.LIVENESS`: name, claim, default
                                bound, the ``forkshare verify`` flag that changes it, and the
                                safety property it complements
``.. forkshare-monitors::``     :data:`forkshare.model.monitors.MONITORS`: per invariant, the
                                check over observed histories (with what it looks for), or why
                                nobody outside can see it
==============================  ================================================================

A table that cannot be imported, or that is empty, fails the build (:func:`code_table`): there
is no hand-written fallback to go stale.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from docutils import nodes
from forkshare_facts import fact_reference, load_facts
from forkshare_tables import Cell, TableDirective, build_table, literals, qualified, text
from forkshare_tables import untranslatable as _untranslatable


def code_table(directive: TableDirective, module: str, name: str) -> dict[str, Any]:
    """``module.name``, a non-empty mapping; a build error (naming it) when it is missing or
    empty, so that a page never renders without the table it documents."""
    try:
        table = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise directive.error(f"{module}.{name} cannot be rendered: {error}") from None
    if not table:
        raise directive.error(f"{module}.{name} is empty: nothing to render")
    return dict(table)


def _step_text(name: str, args: tuple[int, ...]) -> str:
    return f"{name}({', '.join(map(str, args))})"


class FreedomsDirective(TableDirective):
    """``.. forkshare-freedoms::`` — every freedom, how the model allows it, and its witness."""

    def render(self) -> list[nodes.Node]:
        freedoms = code_table(self, "forkshare.model.freedoms", "FREEDOMS")
        _, facts = load_facts()
        rows = []
        for fid, freedom in freedoms.items():
            if fid not in facts:
                raise self.error(f"freedom {fid} has no fact: add it to docs/facts.toml")
            witness = freedom.witness
            steps = ", ".join(_step_text(name, args) for name, args in witness.steps)
            rows.append(
                [
                    [nodes.paragraph("", "", fact_reference(fid, fid))],
                    text(freedom.title),
                    text(freedom.one_way),
                    text(freedom.other_way),
                    self.rst(freedom.modelled_by),
                    text(witness.observed) + literals([f"{witness.config.mode.value}: {steps}"]),
                ]
            )
        header = ("id", "freedom", "one way", "another way", "how the model allows it", "witness")
        return _untranslatable([build_table(header, rows, (6, 16, 16, 16, 20, 26))])


class LivenessDirective(TableDirective):
    """``.. forkshare-liveness::`` — the timed properties the verifier measures."""

    def render(self) -> list[nodes.Node]:
        from forkshare.model.invariants import INVARIANTS

        timed = code_table(self, "forkshare.model.liveness", "LIVENESS")
        rows = []
        for name, prop in timed.items():
            guards = (
                self.rst(f":func:`{prop.guards} <{qualified(INVARIANTS[prop.guards].holds)}>`")
                if prop.guards in INVARIANTS
                else text(prop.guards)
            )
            rows.append(
                [
                    literals([name]),
                    text(prop.claim),
                    text(f"{prop.bound:g} s"),
                    literals([prop.flag]),
                    guards,
                ]
            )
        header = ("timed property", "claim", "default bound", "flag", "complements")
        return _untranslatable([build_table(header, rows, (24, 36, 10, 14, 16))])


class MonitorsDirective(TableDirective):
    """``.. forkshare-monitors::`` — per invariant, its check from outside or why it is hidden."""

    def render(self) -> list[nodes.Node]:
        from forkshare.model.invariants import INVARIANTS

        monitors = code_table(self, "forkshare.model.monitors", "MONITORS")
        missing = [name for name in INVARIANTS if name not in monitors]
        if missing:
            raise self.error(f"no monitor entry for {', '.join(missing)}")
        rows = []
        for name, monitor in monitors.items():
            invariant = self.rst(f":func:`{name} <{qualified(INVARIANTS[name].holds)}>`")
            rows.append([invariant, *self._outside(monitor)])
        header = ("invariant", "seen from outside by", "what it looks for, or why it is hidden")
        return _untranslatable([build_table(header, rows, (26, 22, 52))])

    def _outside(self, monitor: Any) -> list[Cell]:
        if monitor.check is None:
            return [text("hidden"), text(monitor.hidden)]
        doc = inspect.getdoc(monitor.check) or ""
        _, _, what = doc.partition(": ")
        return [self.rst(f":func:`~{qualified(monitor.check)}`"), self.rst(what or doc)]


def setup(app: Any) -> dict[str, Any]:
    """Register the specification's directives."""
    app.add_directive("forkshare-freedoms", FreedomsDirective)
    app.add_directive("forkshare-liveness", LivenessDirective)
    app.add_directive("forkshare-monitors", MonitorsDirective)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
