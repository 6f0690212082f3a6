"""Prose wraps Japanese between characters, keeps ASCII words whole, and never starts a line
with closing punctuation."""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console

from forkshare.prose import Prose, wrap

JAPANESE = "fork() は clone() として現れる。glibc がそのように実装しているからである。"


def test_japanese_wraps_between_characters_within_the_width() -> None:
    lines = wrap(JAPANESE, 20)
    assert "".join(lines).replace(" ", "") == JAPANESE.replace(" ", "")
    assert all(cell_len(line) <= 20 for line in lines)
    assert len(lines) == 4  # 70 cells in four lines of 20: no line is left half empty


def test_ascii_words_are_never_cut() -> None:
    lines = wrap("getsockopt して読んでいる。setsockopt(SO_REUSEADDR) は", 16)
    assert "setsockopt(SO_REUSEADDR)" in lines  # longer than the width: a line of its own
    assert all(word in " ".join(lines) for word in ("getsockopt", "setsockopt(SO_REUSEADDR)"))


def test_closing_punctuation_takes_the_character_before_it_to_the_next_line() -> None:
    lines = wrap("あいうえおかきくけ。さしす", 18)  # 9 characters fill 18 cells; "。" may not start
    assert lines == ["あいうえおかきく", "け。さしす"]


def test_english_wraps_at_spaces() -> None:
    assert wrap("one two three four", 9) == ["one two", "three", "four"]


def test_prose_renders_to_the_width_it_is_given() -> None:
    console = Console(width=24, record=True)
    console.print(Prose(JAPANESE))
    rendered = console.export_text().splitlines()
    assert rendered == wrap(JAPANESE, 24)
