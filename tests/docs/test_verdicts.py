"""The recorded verdicts behind the explanation's comparison table (``.. forkshare-comparison::``).

``docs/verdicts/verdicts.json`` is written by ``docs/verdicts/record.py`` (``make verdicts``): one
default ``forkshare verify --target NAME --json`` per bundled target. These tests hold the file to
the bundled profiles (every one recorded, nothing else), to its explanations (every verdict other
than ``conforms`` has one, and every explanation names a bundled target), and the script to the
verifier: a short recording of the reference server gives an entry from which the directive's
columns can be computed, so the file's shape cannot drift from what ``--json`` prints.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from forkshare.conformance.verify.profile import bundled_names, load_bundled
from tests.docs.rst_blocks import DOCS

VERDICTS = DOCS / "verdicts"
SHORT_BUDGET = ("--no-scenarios", "--examples", "1", "--steps", "3")
"""Discovery, then one walk of three steps: the shape of a default run's report, in seconds."""


def _module(name: str, folder: Path) -> ModuleType:
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return importlib.import_module(name)


def recorder() -> ModuleType:
    """``docs/verdicts/record.py``, the script that writes the file."""
    return _module("record", VERDICTS)


def extension() -> ModuleType:
    """``docs/_ext/forkshare_verifier.py``, the directive that reads it."""
    return _module("forkshare_verifier", DOCS / "_ext")


def record() -> dict[str, Any]:
    loaded: dict[str, Any] = extension().load_record(VERDICTS / "verdicts.json")
    return loaded


def test_every_bundled_target_has_a_recorded_verdict_and_nothing_else_does() -> None:
    assert sorted(record()["targets"]) == sorted(bundled_names())


def test_each_recorded_target_is_a_bundled_profile_that_loads() -> None:
    for name in record()["targets"]:
        assert load_bundled(name).name == name


def test_the_record_says_when_where_and_with_which_servers_it_was_made() -> None:
    made = record()
    for key in ("recorded", "commit", "kernel", "cores", "python", "programs"):
        assert made.get(key), f"verdicts.json lacks {key!r}: re-run docs/verdicts/record.py"
    assert set(made["programs"]) == set(recorder().PROGRAMS)


def test_each_entry_has_a_verdict_and_the_time_and_steps_it_took() -> None:
    for name, entry in record()["targets"].items():
        assert entry["verdict"], name
        assert entry.get("seconds", 0) > 0, name
        assert entry.get("exit_code") in (0, 1, 4, 5), f"{name}: {entry['verdict']}"


def test_every_verdict_other_than_conforms_is_explained() -> None:
    why = extension().load_explanations()
    unexplained = [
        f"{name}: {entry['verdict']}"
        for name, entry in record()["targets"].items()
        if entry["verdict"] != "conforms" and entry["verdict"] not in why.get(name, {})
    ]
    assert not unexplained, f"add a line to docs/verdicts/explanations.toml for {unexplained}"


def test_every_explanation_names_a_bundled_target() -> None:
    assert set(extension().load_explanations()) <= set(bundled_names())


@pytest.mark.process
def test_a_short_recording_gives_every_column_of_the_comparison(tmp_path: Path) -> None:
    entry = recorder().run_one("forkshare-exclusive", tmp_path, SHORT_BUDGET)
    assert entry["verdict"] == "conforms", entry
    ext = extension()
    profile = load_bundled("forkshare-exclusive")
    config = ext.model_config(entry["mode"], entry["discovery"])
    assert "master + 2 workers" in ext.holding(config)
    assert ext.waking(config) == "one of 2 workers waiting"
    assert ext.reloading(profile, entry["discovery"]).startswith("HUP: forks the new generation")
    assert ext.parent_death(profile, entry["discovery"])[1].startswith("seen: at once")
    assert ext.defer(profile, entry["discovery"]) == "off"
