"""Every fact identifier cited anywhere in the repository has a row on the facts page.

The code and the docs cite facts by identifier (``K8``, ``N3``, ``E1b``, ``§1.7``); the page
``docs/reference/facts.rst`` renders ``docs/facts.toml``. A citation the file lacks is a claim a
reader cannot check, so it fails here. Ruff rule codes in ``noqa`` comments and in the ruff
configuration look like identifiers (a letter and digits) and are not scanned.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FACTS = ROOT / "docs" / "facts.toml"
SCANNED = ("*.py", "*.rst", "*.toml", "*.md", "*.in")
"""Files whose text may cite a fact (tracked by git, plus untracked files not ignored)."""

FACT_ID = re.compile(r"(?<![\w§.\-/])(§\d+(?:\.\d+)?|[KNGJEBPF]\d+b?)(?![\w])")
NOQA = re.compile(r"#\s*noqa\b.*$", re.MULTILINE)
RUFF_SECTION = re.compile(
    r"^\[tool\.ruff[^\]]*\]$.*?(?=^\[(?!tool\.ruff))", re.MULTILINE | re.DOTALL
)


def facts() -> dict[str, dict[str, object]]:
    with FACTS.open("rb") as file:
        table: dict[str, dict[str, object]] = tomllib.load(file)["facts"]
    return table


def repository_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", *SCANNED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def cited(text: str, name: str) -> set[str]:
    """The fact identifiers a file's text cites."""
    text = NOQA.sub("", text)
    if name == "pyproject.toml":
        text = RUFF_SECTION.sub("", text + "\n[end]")
    return set(FACT_ID.findall(text))


def citations() -> dict[str, set[str]]:
    """Identifier → the files citing it."""
    found: dict[str, set[str]] = {}
    for path in repository_files():
        for fact_id in cited(path.read_text(errors="replace"), path.name):
            found.setdefault(fact_id, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_cited_fact_is_on_the_facts_page() -> None:
    missing = {i: sorted(files) for i, files in citations().items() if i not in facts()}
    assert not missing, f"cited but not in docs/facts.toml: {missing}"


def test_the_scan_finds_the_facts_the_code_cites() -> None:
    # The scanner must be able to fail: these are cited in model/ and tests/ today.
    assert {"K1", "K8", "K12", "N3", "E1b"} <= citations().keys()


def test_ruff_codes_are_not_mistaken_for_facts() -> None:
    assert cited("x = 1  # noqa: E501, N818\n", "a.py") == set()
    rule = "E" + "501"  # spelled apart, or this file would cite it
    config = f'[tool.ruff.lint]\nignore = ["{rule}"]\n[project]\nK = "K1"\n'
    assert cited(config, "pyproject.toml") == {"K1"}


def test_every_fact_says_something_and_has_a_source() -> None:
    empty = [i for i, entry in facts().items() if not entry.get("fact") or not entry.get("sources")]
    assert not empty, f"facts without a sentence or a source: {empty}"


def test_facts_cited_as_sources_exist() -> None:
    known = facts()
    dangling = {
        i: s
        for i, entry in known.items()
        for s in entry.get("sources", [])  # type: ignore[attr-defined]
        if str(s).startswith("fact:") and str(s).removeprefix("fact:") not in known
    }
    assert not dangling, f"sources naming unknown facts: {dangling}"


def test_every_reproduce_command_names_an_existing_test() -> None:
    defined = set(
        re.findall(
            r"^\s*def (test_\w+)\(",
            "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py")),
            re.MULTILINE,
        )
    )
    stale = {}
    for fact_id, entry in facts().items():
        command = str(entry.get("reproduce", ""))
        if not command:
            continue
        match = re.fullmatch(r"pytest tests -k (test_\w+)", command)
        if match is None or match[1] not in defined:
            stale[fact_id] = command
    assert not stale, f"reproduce commands naming no test (write 'pytest tests -k NAME'): {stale}"
