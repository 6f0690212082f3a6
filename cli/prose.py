"""Prose: a paragraph that rich can wrap between Japanese characters, not only at spaces.

rich wraps text at whitespace and treats a run of Japanese (which has no spaces) as one long
word: "strace の下で動かしている。以下は…" breaks after "strace" and leaves the rest of the line
empty. :class:`Prose` wraps at render time, to the width it is given (a panel's inside, the
terminal), between any two characters of a Japanese run, never inside an ASCII word (a system
call, a flag, ``127.0.0.1:8080``), and never at the start of a line before closing punctuation
(、。）」 …, 行頭禁則 in JIS X 4051: the character before it moves down with it). English wraps
at spaces as rich would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text

# An ASCII word (kept whole), one space, or any other single character (a break may follow it).
_TOKEN = re.compile(r"[!-~]+| |.", re.DOTALL)
# Characters that may not begin a line (行頭禁則): they stay at the end of the previous one.
_NO_LINE_START = frozenset(
    "、。，．・：；？！ー）」』】〉》〕”’…‥ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮ"
)


def wrap(text: str, width: int) -> list[str]:
    """``text`` as lines of at most ``width`` cells; an ASCII word longer than ``width`` is a
    line of its own (rich's console then folds it)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines += _wrap_paragraph(paragraph, max(width, 2))
    return lines


def _wrap_paragraph(paragraph: str, width: int) -> list[str]:
    lines: list[list[str]] = [[]]
    for token in _TOKEN.findall(paragraph):
        line = lines[-1]
        text = "".join(line)
        if token == " " or not text.strip() or cell_len(text + token) <= width:
            line.append(token)
            continue
        # 追い出し: a mark that may not start a line takes the character before it along.
        carried = [line.pop()] if token in _NO_LINE_START and len(line) > 1 else []
        lines.append([*carried, token])
    return ["".join(line).rstrip() for line in lines]


@dataclass(frozen=True, slots=True)
class Prose:
    """A paragraph (``\\n`` starts a new one) in ``style``, wrapped as the module says."""

    text: str
    style: str = ""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self._lines(options.max_width)

    def _lines(self, width: int) -> Iterator[Text]:
        for line in wrap(self.text, width):
            yield Text(line, style=self.style, no_wrap=True, overflow="ignore")

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        longest_token = max((cell_len(t) for t in _TOKEN.findall(self.text)), default=0)
        longest_line = max((cell_len(p) for p in self.text.split("\n")), default=0)
        return Measurement(longest_token, min(longest_line, options.max_width))
