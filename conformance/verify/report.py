"""What ``forkshare verify`` prints: the verdict table, the evidence, coverage, and ``--json``.

A violation is printed with the property's name and claim, the evidence (pids, inodes, clients,
seconds), the scenario or walk that found it, the shortest steps, the record that failed next to
the records the model allowed, and a replay command. An unexplained behaviour is printed as
exactly that, with the same records and a request to report it; it is never called a violation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from forkshare.conformance.verify.verify import Result
from forkshare.model.invariants import INVARIANTS
from forkshare.model.liveness import LIVENESS

CANNOT_OBSERVE = (
    "the accept-mutex lock word (hidden state; checked only through a --trace file; its timed "
    "face, mutex_recovers_after_holder_death, is measured)",
    "wake-ups per connection (the herd) and fairness: not measured in a run",
    "which reuseport clone a queued client sits in, and the listener's backlog (K11)",
    "which model worker is which real one: processes are compared as a multiset per role",
    "helpers the master forks that hold no listener are counted as workers",
    "a read timeout shorter than the time a worker is held stopped (up to a second or two) "
    "drops a request in hand; the verifier reports that as requests_in_hand_are_answered",
    "a connection a passfd master has sent to a stopped worker when the master dies (it waits "
    "in the worker's channel; the model resets it at once)",
)

ISSUES = "https://github.com/forkshare/forkshare/issues"


def claim_of(name: str) -> str:
    """The one-line claim of a property, safety or timed."""
    if name in INVARIANTS:
        return INVARIANTS[name].claim
    if name in LIVENESS:
        prop = LIVENESS[name]
        return f"{prop.claim} (within {prop.bound:g} s by default, {prop.flag})"
    return ""


def render(result: Result, replay_file: Path | None, console: Console) -> None:
    """The whole report for people."""
    config = result.config
    console.print(
        f"[bold]{escape(result.target)}[/]: mode {config.mode}, parent death "
        f"{config.parent_death}, {config.workers} workers — {result.steps} steps in "
        f"{result.seconds:.1f} s ({result.steps_per_second:.1f} steps/s)"
    )
    for line in result.discovered:
        console.print(f"  discovered: {escape(line)}")
    if result.not_prefork:
        console.print(f"[yellow bold]not a prefork server[/]: {escape(result.not_prefork)}")
        return
    console.print(_verdict_table(result))
    for finding in result.findings:
        console.print(f"[yellow]finding:[/] {escape(finding)}")
    _render_violation(result, replay_file, console)
    console.print(f"coverage: {result.coverage.describe()}")
    if result.scenarios:
        console.print(f"scenarios played: {len(result.scenarios)}")
    console.print("[dim]cannot observe: " + escape("; ".join(CANNOT_OBSERVE)) + "[/]")


def _verdict_table(result: Result) -> Table:
    table = Table("property", "verdict")
    for name, verdict in result.verdicts().items():
        if verdict.startswith("VIOLATED"):
            style = "red"
        elif verdict in ("not claimed", "not observable"):
            style = "dim"
        else:
            style = "green"
        table.add_row(name, f"[{style}]{verdict}[/]")
    return table


def _render_violation(result: Result, replay_file: Path | None, console: Console) -> None:
    violation = result.violation
    if violation is None:
        console.print("[green bold]conforms[/]")
        return
    if violation.unexplained:
        console.print(
            "[yellow bold]unexplained behaviour[/]: the target did something the model does not "
            "allow and no property explains it; this is not reported as a violation. Please "
            f"report it with the replay file ({ISSUES})."
        )
        console.print(f"  {escape(violation.message)}")
    else:
        console.print(
            f"[red bold]violated: {violation.prop}[/] — {escape(claim_of(violation.prop))}"
        )
        console.print(f"  evidence: {escape(violation.message)}")
    console.print(f"  found by: {escape(violation.found_by)}")
    for number, (name, args) in enumerate(violation.steps, 1):
        console.print(f"  {number}. {name}({', '.join(map(str, args))})")
    if violation.observed:
        console.print(f"  observed: {escape(violation.observed)}")
    for allowed in violation.allowed[:6]:
        console.print(f"  allowed:  {escape(allowed)}")
    if replay_file is not None:
        console.print(f"  replay:   forkshare verify --replay {replay_file}")


def to_json(result: Result, replay_file: Path | None) -> dict[str, Any]:
    """The result as one JSON-ready dict."""
    violation = result.violation
    return {
        "target": result.target,
        "verdict": result.verdict,
        "exit_code": result.exit_code,
        "mode": str(result.config.mode),
        "parent_death": str(result.config.parent_death),
        "steps": result.steps,
        "seconds": round(result.seconds, 3),
        "steps_per_second": round(result.steps_per_second, 2),
        "not_prefork": result.not_prefork or None,
        "discovered": result.discovered,
        "discovery": result.discovery,
        "properties": result.verdicts(),
        "findings": result.findings,
        "scenarios": result.scenarios,
        "coverage": result.coverage.to_json(),
        "violation": None
        if violation is None
        else {
            "property": None if violation.unexplained else violation.prop,
            "unexplained": violation.unexplained,
            "claim": claim_of(violation.prop),
            "evidence": violation.message,
            "found_by": violation.found_by,
            "steps": [[n, list(a)] for n, a in violation.steps],
            "observed": violation.observed,
            "allowed": violation.allowed,
            "replay": None if replay_file is None else f"forkshare verify --replay {replay_file}",
        },
    }
