"""Sphinx directives for the verifier's tables: profile keys, scenarios, and the comparison of the
bundled targets with their recorded verdicts.

==================================  ============================================================
directive                           renders
==================================  ============================================================
``.. forkshare-profile-keys::``     :data:`forkshare.conformance.verify.profile.KEYS`: key,
                                    command-line flag (as ``forkshare verify``'s parser has
                                    it), the kinds of target it applies to, help
``.. forkshare-scenarios::``        :data:`forkshare.conformance.verify.scenarios.SCENARIOS`:
                                    name, the modes it is meant for, the workers it needs, steps
``.. forkshare-comparison::``       every bundled profile with its recorded verdict
                                    (``docs/verdicts/verdicts.json``, written by
                                    ``docs/verdicts/record.py``): how it shares, wakes, reloads,
                                    what its workers do when the master dies, defer-accept, and
                                    the verdict of a default ``forkshare verify``
==================================  ============================================================

The comparison takes each column from one place: the sharing mode from the run (the profile's
claim, or what discovery found for ``auto``); who holds the listener and how many processes one
connection wakes from the model itself, started in that mode (:func:`forkshare_tables.started`,
with discovery's private reuseport sockets and F9 finding); the reload order, the parent-death
latency and defer-accept from discovery's findings in the record; the claims from the profile.
A bundled profile without a recorded verdict, a recorded target that is not bundled, and a
verdict other than ``conforms`` without a one-line explanation in
``docs/verdicts/explanations.toml`` each fail the build.

Discussion:
    *Recorded verdicts, not verdicts computed at build time.* A default verification takes 20–60 s
    per target and needs nginx, Apache, gunicorn and Node installed; the docs build must not. So
    the verdicts are recorded by a script anyone can re-run, with the date, the commit and the
    servers' versions, and the table says when it was recorded. The explanations are prose
    (translated through the catalogs like the facts); the recorded data stays as recorded.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from docutils import nodes
from forkshare_spec import code_table
from forkshare_tables import (
    Cell,
    TableDirective,
    build_table,
    literals,
    started,
    text,
    untranslatable,
)

VERDICTS_DIR = Path(__file__).resolve().parent.parent / "verdicts"
VERDICTS_FILE = VERDICTS_DIR / "verdicts.json"
"""The recorded verdicts (``docs/verdicts/record.py`` writes it)."""
EXPLANATIONS_FILE = VERDICTS_DIR / "explanations.toml"
"""One line per (target, verdict other than ``conforms``): why the server gets that verdict."""
KIND_ORDER = ("nginx", "apache", "gunicorn", "node", "command")
"""Rows grouped by kind: the third-party servers first, the reference server last."""
KEEPS_EVERY_CLONE = "every worker keeps every clone"
"""How discovery's F9 finding starts when workers keep every reuseport clone (nginx, N1)."""


# ---------------------------------------------------------------------------------------------
# forkshare-profile-keys, forkshare-scenarios
# ---------------------------------------------------------------------------------------------


class ProfileKeysDirective(TableDirective):
    """``.. forkshare-profile-keys::`` — every profile key with its flag and the kinds it fits."""

    def render(self) -> list[nodes.Node]:
        from forkshare.conformance.verify.options import build_parser
        from forkshare.conformance.verify.profile import KINDS

        keys = code_table(self, "forkshare.conformance.verify.profile", "KEYS")
        flags = {flag for action in build_parser()._actions for flag in action.option_strings}
        rows = [
            [
                literals([name]),
                literals([key.flag]) if key.flag in flags else text("none"),
                text("every kind") if key.kinds == KINDS else literals(key.kinds),
                text(key.help),
            ]
            for name, key in keys.items()
        ]
        header = ("key", "flag", "kinds", "meaning")
        return untranslatable([build_table(header, rows, (20, 22, 14, 44))])


def _step(name: str, args: tuple[int, ...]) -> str:
    from forkshare.conformance.verify.scenarios import HOLDER

    shown = ["holder" if arg == HOLDER else str(arg) for arg in args]
    return f"{name}({', '.join(shown)})"


class ScenariosDirective(TableDirective):
    """``.. forkshare-scenarios::`` — the scenarios a default run plays before the walks."""

    def render(self) -> list[nodes.Node]:
        from forkshare.conformance.verify.scenarios import SCENARIOS

        if not SCENARIOS:
            raise self.error("forkshare.conformance.verify.scenarios.SCENARIOS is empty")
        rows = [
            [
                text(scenario.name),
                text("every mode")
                if scenario.modes is None
                else literals(sorted(m.value for m in scenario.modes)),
                text(str(scenario.workers)),
                literals([_step(name, args) for name, args in scenario.steps], separator=" → "),
            ]
            for scenario in SCENARIOS
        ]
        header = ("scenario", "modes", "workers", "steps")
        return untranslatable([build_table(header, rows, (26, 12, 8, 54))])


# ---------------------------------------------------------------------------------------------
# forkshare-comparison
# ---------------------------------------------------------------------------------------------


@cache
def _read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def load_record(path: Path = VERDICTS_FILE) -> dict[str, Any]:
    """The recorded verdicts; raises OSError or ValueError when the file is missing or broken."""
    return _read_json(path)


def load_explanations(path: Path = EXPLANATIONS_FILE) -> dict[str, dict[str, str]]:
    """Target → verdict → the one-line explanation."""
    with path.open("rb") as file:
        return tomllib.load(file)


def _counted(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _roles(processes: Any) -> str:
    counts: dict[str, int] = {}
    for proc in processes:
        counts[proc.role.value] = counts.get(proc.role.value, 0) + 1
    return " + ".join(_counted(n, role) for role, n in counts.items()) or "nobody"


def model_config(mode: str, discovery: Mapping[str, Any] | None) -> Any:
    """The model's configuration for a recorded target: its mode, 2 workers, and what discovery
    saw of reuseport sockets (private to each worker; every clone kept or only its own, F9)."""
    from forkshare.model.config import Config, Mode

    found = discovery or {}
    f9 = str(found.get("freedoms", {}).get("F9", ""))
    reuseport = Mode(mode) is Mode.REUSEPORT
    return Config(
        mode=Mode(mode),
        workers=2,
        private_reuseport=reuseport and bool(found.get("private_reuseport")),
        workers_keep_all_clones=not reuseport or f9.startswith(KEEPS_EVERY_CLONE),
    )


def holding(config: Any) -> str:
    """Who holds which listening socket once the model's server has started in ``config``."""
    state = started(config)
    lines: dict[str, int] = {}
    for listener in state.listeners:
        kind = "reuseport socket" if listener.reuseport else "socket"
        key = f"{kind}|{_roles(state.holders(listener.sid))}"
        lines[key] = lines.get(key, 0) + 1
    parts = []
    for key, count in lines.items():
        kind, roles = key.split("|")
        each = ", each" if count > 1 else ""
        parts.append(f"{_counted(count, kind)}{each} held by {roles}")
    return "; ".join(parts)


def waking(config: Any) -> str:
    """How many of the processes waiting on a listener one arriving connection wakes, in the
    model's server started in ``config``."""
    from forkshare.model.actions import waiters, wakeups_for_arrival

    state = started(config)
    listener = state.listeners[0]
    waiting = waiters(config, state, listener)
    woken = wakeups_for_arrival(config, state, listener)
    per_socket = " per socket" if len(state.listeners) > 1 else ""
    if woken > 1:
        return f"all {_roles(waiting)} waiting{per_socket} (a herd)"
    if len(waiting) == 1 and waiting[0].is_master:
        return "one: the master, which accepts and passes each connection to a worker"
    if len(waiting) == 1:
        return f"one: the only {_roles(waiting).removeprefix('1 ')} waiting{per_socket}"
    return f"one of {_roles(waiting)} waiting{per_socket}"


def reloading(profile: Any, discovery: Mapping[str, Any] | None) -> str:
    """The reload signal and the order discovery saw (F4)."""
    order = (discovery or {}).get("reload_order") or "order not observed"
    return f"{profile.reload_signal.name.removeprefix('SIG')}: {order}"


def parent_death(profile: Any, discovery: Mapping[str, Any] | None) -> list[str]:
    """The claim, and what discovery saw when it SIGKILLed the master (F7)."""
    claim = f"claims {profile.parent_death.value}"
    if profile.parent_death.value == "workers-exit" and profile.parent_death_bound is not None:
        claim += f" within {profile.parent_death_bound:g} s"
    seen = str((discovery or {}).get("freedoms", {}).get("F7", "not probed"))
    return [claim, f"seen: {seen}"]


def defer(profile: Any, discovery: Mapping[str, Any] | None) -> str:
    """TCP_DEFER_ACCEPT as discovery saw it (F6, K19), and the claim when the profile pins it."""
    seen = (discovery or {}).get("defer_accept")
    shown = "not observed" if seen is None else ("on" if seen else "off")
    return shown if profile.defer_accept == "auto" else f"{shown} (claims {profile.defer_accept})"


class ComparisonDirective(TableDirective):
    """``.. forkshare-comparison::`` — the bundled targets side by side, with their verdicts."""

    def render(self) -> list[nodes.Node]:
        from forkshare.conformance.verify.profile import bundled_names, load_bundled

        record, explanations = self._inputs()
        recorded = record.get("targets", {})
        bundled = bundled_names()
        missing = [name for name in bundled if name not in recorded]
        if missing:
            raise self.error(
                f"no recorded verdict for {', '.join(missing)}: run docs/verdicts/record.py "
                f"--only {' '.join(missing)}"
            )
        unknown = [name for name in recorded if name not in bundled]
        if unknown:
            raise self.error(
                f"{VERDICTS_FILE.name} records targets that are not bundled: {unknown}"
            )
        profiles = sorted(
            (load_bundled(name) for name in bundled),
            key=lambda p: (KIND_ORDER.index(p.kind), p.name),
        )
        rows = [self._row(p, recorded[p.name], explanations.get(p.name, {})) for p in profiles]
        header = [
            self.rst(title)
            for title in (
                "target",
                "shares (mode: who holds the listener)",
                "one connection wakes",
                "reload (:fact:`F4`)",
                "master killed (:fact:`F7`)",
                "defer-accept (:fact:`K19`)",
                "verdict of a default run",
            )
        ]
        table = build_table(header, rows, (12, 18, 12, 14, 16, 8, 20))
        return [self._circumstances(record), table]

    def _inputs(self) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
        for path in (VERDICTS_FILE, EXPLANATIONS_FILE):
            self.env.note_dependency(str(path))
        try:
            return load_record(), load_explanations()
        except (OSError, ValueError) as error:
            raise self.error(f"the recorded verdicts cannot be read: {error}") from None

    def _circumstances(self, record: Mapping[str, Any]) -> nodes.Node:
        programs = "; ".join(
            said if name.rstrip("0123456789") in said.lower() else f"{name} {said}"
            for name, said in record.get("programs", {}).items()
        )
        line = (
            f"recorded {record.get('recorded', '?')} at commit {record.get('commit', '?')}, "
            f"Linux {record.get('kernel', '?')}, {record.get('cores', '?')} cores, Python "
            f"{record.get('python', '?')}; {programs}"
        )
        paragraph = nodes.paragraph(classes=["forkshare-recorded"])
        paragraph += nodes.emphasis(line, line)
        untranslatable([paragraph])
        return paragraph

    def _row(self, profile: Any, entry: Mapping[str, Any], why: Mapping[str, str]) -> list[Cell]:
        discovery = entry.get("discovery")
        mode = str(entry.get("mode") or profile.mode)
        config = model_config(mode, discovery)
        cells: list[Cell] = [
            literals([profile.name]),
            literals([mode]) + text(holding(config)),
            text(waking(config)),
            text(reloading(profile, discovery)),
            [nodes.paragraph(text=line) for line in parent_death(profile, discovery)],
            text(defer(profile, discovery)),
        ]
        untranslatable([node for cell in cells for node in cell])
        return [*cells, self._verdict(profile.name, entry, why)]

    def _verdict(self, name: str, entry: Mapping[str, Any], why: Mapping[str, str]) -> Cell:
        verdict = str(entry.get("verdict", "no verdict"))
        facts = [f"{entry.get('steps', 0)} steps, {entry.get('seconds', 0):.0f} s"]
        if entry.get("found_by"):
            facts.append(f"found by: {entry['found_by']}")
        cell = untranslatable(literals([verdict]) + text("; ".join(facts)))
        if verdict == "conforms":
            return cell
        if verdict not in why:
            raise self.error(
                f"{name}: recorded verdict {verdict!r} has no explanation: add one line under "
                f'[{name}] "{verdict}" in docs/verdicts/explanations.toml'
            )
        return cell + self.rst(why[verdict])


def setup(app: Any) -> dict[str, Any]:
    """Register the verifier's directives."""
    app.add_directive("forkshare-profile-keys", ProfileKeysDirective)
    app.add_directive("forkshare-scenarios", ScenariosDirective)
    app.add_directive("forkshare-comparison", ComparisonDirective)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
