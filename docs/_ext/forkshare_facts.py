"""The facts forkshare rests on: ``docs/facts.toml`` rendered as tables, cited with ``:fact:``.

Code comments and the docs cite facts by identifier (``K1``, ``N3``, ``§1.7``). This module makes
each identifier checkable by a reader: ``.. forkshare-facts:: K`` renders every fact of family
``K`` with its public sources and, where the project measured it, the command that reproduces it;
``:fact:`K1``` links to that row, and an identifier the file lacks fails the build (``-W``).
``tests/docs/test_facts.py`` reads the same file and fails on an identifier used anywhere in the
repository that it lacks.

The fact sentences are prose written for this project, so they are translated through the gettext
catalogs like any paragraph; the sources (titles, man page names, commit ids) and the commands are
not.

Discussion:
    *A TOML file, not a Python table.* The facts are data read by the docs and by a test; neither
    the model nor the server imports them, so keeping them out of the installed packages keeps the
    layering (ARCHITECTURE.md) intact, and a TOML file is easier to review than a literal dict.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from docutils import nodes
from forkshare_tables import Cell, TableDirective, build_table
from sphinx import addnodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxRole

logger = logging.getLogger(__name__)

FACTS_FILE = Path(__file__).resolve().parent.parent / "facts.toml"
"""The one list of facts: ``[families]`` and ``[facts.ID]`` tables (see the file's header)."""

SECTION_FAMILY = "S"
"""The family of ``§N`` identifiers: sections of the project's collection of facts."""

SOURCE_SCHEMES: dict[str, str] = {
    "man": "https://man7.org/linux/man-pages/man{section}/{page}.{section}.html",
    "kernel-doc": "https://docs.kernel.org/{path}.html",
    "linux-commit": "https://git.kernel.org/torvalds/c/{value}",
    "nginx-commit": "https://github.com/nginx/nginx/commit/{value}",
    "nginx-trac": "https://trac.nginx.org/nginx/ticket/{value}",
    "nginx-doc": "https://nginx.org/en/docs/{value}",
    "github": "https://github.com/{repo}/issues/{number}",
    "code": "https://github.com/{repo}/blob/HEAD/{path}",
    "lwn": "https://lwn.net/Articles/{value}/",
}
"""``scheme:value`` source strings and the address each links to (``url:`` and ``fact:`` aside)."""


def family_of(fact_id: str) -> str:
    """``K`` for ``K12``, ``E`` for ``E1b``, :data:`SECTION_FAMILY` for ``§1.7``."""
    if fact_id.startswith("§"):
        return SECTION_FAMILY
    return re.sub(r"\d+b?$", "", fact_id)


def label_of(fact_id: str) -> str:
    """The cross-reference label of a fact's row: ``fact-k12``, ``fact-s1-7``."""
    return "fact-" + fact_id.lower().replace("§", "s").replace(".", "-")


@cache
def load_facts() -> tuple[Mapping[str, str], Mapping[str, Mapping[str, Any]]]:
    """``(families, facts)`` from :data:`FACTS_FILE`: family letter → title, id → entry."""
    with FACTS_FILE.open("rb") as file:
        data = tomllib.load(file)
    return data["families"], data["facts"]


def source_node(source: str) -> nodes.Node:
    """One source as a link (or plain text); raises ValueError for a malformed one."""
    scheme, _, value = source.partition(":")
    if scheme == "fact":
        return fact_reference(value, value)
    if scheme == "url":
        match = re.fullmatch(r"(.+) <(https?://\S+)>", value)
        if not match:
            raise ValueError(f"url source {source!r} is not 'TITLE <https://…>'")
        return nodes.reference(match[1], match[1], refuri=match[2])
    if scheme not in SOURCE_SCHEMES:
        if re.fullmatch(r"[a-z-]+", scheme) and value:
            raise ValueError(f"unknown source scheme {scheme!r} in {source!r}")
        return nodes.Text(source)
    label, uri = _source_text_and_uri(scheme, value)
    return nodes.reference(label, label, refuri=uri)


def _source_text_and_uri(scheme: str, value: str) -> tuple[str, str]:
    template = SOURCE_SCHEMES[scheme]
    if scheme == "man":
        match = re.fullmatch(r"([\w.-]+)\((\d)\)", value)
        if not match:
            raise ValueError(f"man page {value!r} is not 'page(N)'")
        uri = template.format(page=match[1], section=match[2])
        return value, uri
    if scheme == "kernel-doc":
        path, _, topic = value.partition(" ")
        text = f"Documentation/{path}.rst" + (f" ({topic})" if topic else "")
        return text, template.format(path=path)
    if scheme == "github":
        repo, _, number = value.partition("#")
        return value, template.format(repo=repo, number=number)
    if scheme == "code":
        repo, _, rest = value.partition(" ")
        path, _, what = rest.partition(" ")
        text = f"{repo} {path}" + (f" {what}" if what else "")
        return text, template.format(repo=repo, path=path)
    prefixes = {"linux-commit": "Linux commit ", "nginx-commit": "nginx commit ", "lwn": "LWN "}
    names = {"nginx-trac": "nginx trac #", "nginx-doc": "nginx.org "}
    text = prefixes.get(scheme, names.get(scheme, "")) + value
    return text, template.format(value=value)


def fact_reference(fact_id: str, title: str) -> nodes.Node:
    """A link to the row of ``fact_id`` on the facts page."""
    reference = addnodes.pending_xref(
        "",
        refdomain="std",
        reftype="ref",
        reftarget=label_of(fact_id),
        refexplicit=True,
        refwarn=True,
    )
    reference += nodes.inline(title, title, classes=["forkshare-fact"])
    return reference


class FactRole(SphinxRole):
    """``:fact:`K1``` (or ``:fact:`title <K1>```): a link to the fact's row; unknown ids fail."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        match = re.fullmatch(r"(.+?)\s*<(.+)>", self.text)
        title, fact_id = (match[1], match[2]) if match else (self.text, self.text)
        _, facts = load_facts()
        if fact_id not in facts:
            message = self.inliner.reporter.error(
                f"unknown fact {fact_id!r}: add it to docs/facts.toml", line=self.lineno
            )
            return [nodes.problematic(self.rawtext, self.rawtext)], [message]
        return [fact_reference(fact_id, title)], []


class FactsDirective(TableDirective):
    """``.. forkshare-facts:: FAMILY`` — every fact of one family, in the file's order."""

    required_arguments = 1

    def render(self) -> list[nodes.Node]:
        families, facts = load_facts()
        family = self.arguments[0]
        if family not in families:
            raise self.error(f"no fact family {family!r}; known: {', '.join(families)}")
        self.env.note_dependency(str(FACTS_FILE))
        rows = [self._row(i, entry) for i, entry in facts.items() if family_of(i) == family]
        header = [self.rst(title) for title in ("id", "fact", "sources", "reproduce here")]
        return [build_table(header, rows, (8, 52, 25, 15))]

    def _row(self, fact_id: str, entry: Mapping[str, Any]) -> list[Cell]:
        label = label_of(fact_id)
        target = nodes.target("", "", ids=[label], names=[label])
        self.state.document.note_explicit_target(target)
        identifier = nodes.paragraph()
        identifier += target
        identifier += nodes.strong(fact_id, fact_id)
        sources = nodes.paragraph()
        for index, source in enumerate(entry.get("sources", [])):
            if index:
                sources += nodes.Text("; ")
            try:
                sources += source_node(source)
            except ValueError as error:
                raise self.error(f"fact {fact_id}: {error}") from None
        command = entry.get("reproduce", "")
        reproduce = [nodes.paragraph("", "", nodes.literal(command, command))] if command else []
        return [[identifier], self.rst(entry["fact"]), [sources], reproduce]


def setup(app: Any) -> dict[str, Any]:
    """Register ``forkshare-facts`` and ``:fact:``."""
    app.add_directive("forkshare-facts", FactsDirective)
    app.add_role("fact", FactRole())
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
