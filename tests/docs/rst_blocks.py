"""The literal blocks of the docs' reStructuredText sources, and the commands in console blocks.

The docs' own convention (``docs/contributing.rst``): commands live in ``.. code-block:: console``
blocks with one ``$ `` line per command (a trailing ``\\`` continues it) and exactly one of the
classes ``run``, ``session`` or ``check``; output and diagrams live in ``.. code-block:: text``;
files are shown with ``.. literalinclude::``. A plain ``::`` literal block has no language and no
class, so nobody can tell whether it is meant to run: :func:`blocks` reports it with language
``""`` and the tests reject it.

Discussion:
    *A line scanner rather than docutils.* Parsing with docutils would need every Sphinx directive
    and role registered (or a full Sphinx build); the docs use a small, regular subset of
    reStructuredText for literal blocks, and a scanner over it is short, fast and exact for that
    subset. The Sphinx build (``-W``) still rejects malformed markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
"""The Sphinx source folder."""

CLASSES = ("run", "session", "check")
"""How a console block is checked (exactly one per block)."""

_DIRECTIVE = re.compile(r"^(\s*)\.\. (code-block|code|sourcecode|literalinclude)::\s*(\S*)\s*$")
_OPTION = re.compile(r"^\s*:([\w-]+):\s*(.*)$")


@dataclass(frozen=True, slots=True)
class Block:
    """One literal block: where it is, its language (``""`` for a plain ``::`` block), its
    classes, its text (dedented), or the file it includes."""

    page: str
    line: int
    language: str
    classes: tuple[str, ...]
    text: str
    include: str = ""

    @property
    def where(self) -> str:
        """``page.rst:LINE``, for messages."""
        return f"{self.page}:{self.line}"

    @property
    def kind(self) -> str:
        """The one class of :data:`CLASSES` a console block has, or ``""``."""
        chosen = [c for c in self.classes if c in CLASSES]
        return chosen[0] if len(chosen) == 1 else ""

    @property
    def expected_status(self) -> int:
        """The exit status every command must end with: N for a class ``exit-N``, else 0."""
        for name in self.classes:
            if name.startswith("exit-"):
                return int(name.removeprefix("exit-"))
        return 0

    def commands(self) -> list[str]:
        """The commands of a console block: each ``$ `` line joined with its continuations."""
        commands: list[str] = []
        current: list[str] | None = None
        for raw in self.text.splitlines():
            if current is None:
                if not raw.startswith("$ "):
                    continue  # output
                current = [raw.removeprefix("$ ")]
            else:
                current.append(raw.strip())
            if current[-1].endswith("\\"):
                current[-1] = current[-1].removesuffix("\\").rstrip()
                continue
            commands.append(" ".join(current))
            current = None
        return commands


def pages() -> list[Path]:
    """Every reStructuredText page of the docs (the build output excluded)."""
    return sorted(p for p in DOCS.rglob("*.rst") if "_build" not in p.parts)


def blocks(page: Path) -> list[Block]:
    """The literal blocks of ``page`` in order."""
    lines = page.read_text().splitlines()
    name = str(page.relative_to(DOCS))
    found: list[Block] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        directive = _DIRECTIVE.match(line)
        if directive:
            indent = len(directive[1])
            options, index = _options(lines, index + 1, indent)
            body, end = _body(lines, index, indent)
            classes = tuple(options.get("class", "").split())
            if directive[2] == "literalinclude":
                found.append(Block(name, index, "include", classes, "", include=directive[3]))
            else:
                found.append(Block(name, index, directive[3], classes, body))
            index = end
            continue
        stripped = line.strip()
        if stripped.endswith("::") and not stripped.startswith(".."):
            indent = len(line) - len(line.lstrip())
            body, end = _body(lines, index + 1, indent)
            if body:
                found.append(Block(name, index + 1, "", (), body))
            index = end
            continue
        index += 1
    return found


def _options(lines: list[str], index: int, indent: int) -> tuple[dict[str, str], int]:
    options: dict[str, str] = {}
    while index < len(lines):
        match = _OPTION.match(lines[index])
        if not match or _indent(lines[index]) <= indent:
            break
        options[match[1]] = match[2]
        index += 1
    return options, index


def _body(lines: list[str], index: int, indent: int) -> tuple[str, int]:
    """The indented block starting at ``index`` (after blank lines), dedented, and its end."""
    body: list[str] = []
    while index < len(lines) and (not lines[index].strip() or _indent(lines[index]) > indent):
        body.append(lines[index])
        index += 1
    while body and not body[-1].strip():
        body.pop()
    while body and not body[0].strip():
        body.pop(0)
    if not body:
        return "", index
    margin = min(_indent(line) for line in body if line.strip())
    return "\n".join(line[margin:] for line in body), index


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())
