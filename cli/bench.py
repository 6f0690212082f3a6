"""``forkshare bench``: every speed figure the project promises, measured in one run.

Sections (each selectable with ``--only``):

* ``explorer`` — states per second of one exploration on one core and on every core, and the
  ratio to the reference explorer (the one before compact states, run on the same model in the
  same run); the exhaustive run of 3 workers × 3 connections in every mode, on one core and on
  every core (targets: 20,000 states/s and 3× on one core, all modes under 60 s);
* ``coverage`` — the share of the explorer's states a default Hypothesis run reaches;
* ``proofs`` — the z3 proof suite's wall time and its slowest query (targets: 5 s, 500 ms);
* ``verify`` — steps per second of ``forkshare verify --target forkshare-exclusive`` (< 60 s);
* ``server`` — requests/s with wrk against forkshare, nginx and gunicorn, 2 workers each.

Speed targets are checked here, never by timed unit tests. Figures are printed as measured;
a section that cannot run says why instead of printing a number.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from forkshare.model.config import Bounds, Config, Mode
from forkshare.model.explorer import Exploration, explore, explore_reference

EXHAUSTIVE_BOUNDS = Bounds(connections=3, kills=1, stops=0, reloads=0, shutdowns=0)
"""The 3 workers × 3 connections run: one SIGKILL, every interleaving of accepts and respawns."""


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure with the target it is held against."""

    section: str
    name: str
    value: str
    target: str = ""
    met: bool | None = None


def bench_explorer() -> list[Figure]:
    """States/s of the default exclusive exploration on one core (wall and CPU time) and on every
    core, against the reference explorer measured in the same run; and every mode at 3 workers ×
    3 connections, on one core and on every core."""
    config = Config(mode=Mode.EXCLUSIVE, workers=2)
    cores = os.cpu_count() or 1
    load_before = os.getloadavg()[0]
    reference, reference_cpu = _timed(lambda: explore_reference(config))
    one, one_cpu = _timed(lambda: explore(config))
    every = explore(config, processes=cores) if cores > 1 else one
    ratio = one.states_per_second / reference.states_per_second
    figures = [
        Figure(
            "explorer",
            "reference explorer (before compact states), exclusive 2×2, default budgets",
            f"{reference.states_per_second:,.0f} states/s ({reference.states:,} states in "
            f"{reference.seconds:.1f} s; CPU {reference.states / reference_cpu:,.0f} states/s)",
        ),
        Figure(
            "explorer",
            "states/s on one core (exclusive, 2 workers × 2 connections, default budgets)",
            f"{one.states_per_second:,.0f} ({one.states:,} states in {one.seconds:.1f} s; "
            f"CPU {one.states / one_cpu:,.0f} states/s)",
            "≥ 20,000",
            one.states_per_second >= 20_000,
        ),
        Figure(
            "explorer",
            "one core vs the reference explorer, same run",
            f"{ratio:.1f}× (CPU {reference_cpu / one_cpu:.1f}×)",
            "≥ 3×",
            ratio >= 3,
        ),
        Figure(
            "explorer",
            f"states/s on all {cores} cores (same exploration)",
            f"{every.states_per_second:,.0f} ({every.seconds:.1f} s)",
        ),
    ]
    for processes, label in ((1, "one core"), (cores, f"{cores} cores")):
        if processes == 1 or cores > 1:
            figures.extend(_every_mode(processes, label))
    figures.append(
        Figure(
            "explorer",
            "machine load (1-minute load average, before and after)",
            f"{load_before:.1f} → {os.getloadavg()[0]:.1f} on {cores} cores: "
            + _load_meaning(load_before, cores),
        )
    )
    return figures


def _load_meaning(load_before: float, cores: int) -> str:
    """What the load before the run says about the wall-clock figures (the bench's own
    processes raise the load after it)."""
    if load_before >= cores - 0.5:
        return (
            "busy before the run: other processes took part of the time the wall-clock "
            "figures count"
        )
    return "idle enough before the run: the wall-clock figures are the bench's own"


def _timed(run: Callable[[], Exploration]) -> tuple[Exploration, float]:
    """The exploration ``run`` returns, and the CPU seconds this process spent on it."""
    start = time.process_time()
    result = run()
    return result, max(time.process_time() - start, 1e-9)


def _every_mode(processes: int, label: str) -> list[Figure]:
    figures = []
    total = 0.0
    for mode in Mode:
        result = explore(
            Config(mode=mode, workers=3, bounds=EXHAUSTIVE_BOUNDS), processes=processes
        )
        total += result.seconds
        figures.append(
            Figure(
                "explorer",
                f"3×3 {mode.value}, {label}",
                f"{result.states:,} states, {result.seconds:.1f} s, "
                f"{result.states_per_second:,.0f} states/s",
            )
        )
    figures.append(
        Figure(
            "explorer", f"3×3, every mode, total, {label}", f"{total:.1f} s", "< 60 s", total < 60
        )
    )
    return figures


def bench_coverage() -> list[Figure]:
    """How many of the explorer's states a default Hypothesis run (100 walks × 30 steps) visits."""
    from hypothesis import settings
    from hypothesis.stateful import run_state_machine_as_test

    from forkshare.conformance.verify.machine import build_machine
    from forkshare.model.state import System

    config = Config(mode=Mode.EXCLUSIVE, workers=2, bounds=Bounds(connections=2, kills=1))
    reachable = explore(config).states
    visited: set[System] = set()
    machine = build_machine(config, visited=visited)
    run_state_machine_as_test(
        machine, settings=settings(max_examples=100, stateful_step_count=30, deadline=None)
    )
    share = len(visited) / reachable
    return [
        Figure(
            "coverage",
            "Hypothesis run vs explorer (exclusive 2×2)",
            f"{len(visited):,} of {reachable:,} states ({share:.1%})",
        )
    ]


def bench_proofs() -> list[Figure]:
    """Wall time of the whole proof suite and its slowest query."""
    proofs = importlib.import_module("forkshare.proofs.suite")
    report = proofs.run_proof_suite()
    return [
        Figure(
            "proofs",
            "whole suite wall time",
            f"{report.seconds:.2f} s",
            "< 5 s",
            report.seconds < 5,
        ),
        Figure(
            "proofs",
            "slowest query",
            f"{report.slowest_ms:.0f} ms",
            "< 500 ms",
            report.slowest_ms < 500,
        ),
        Figure("proofs", "obligations", f"{report.count} ({report.failures} failed)"),
    ]


def bench_verify() -> list[Figure]:
    """A default ``forkshare verify --target forkshare-exclusive``: wall time and steps/s."""
    conformance = importlib.import_module("forkshare.conformance.verify.command")
    start = time.perf_counter()
    result = conformance.run_default_verification("forkshare-exclusive")
    seconds = time.perf_counter() - start
    return [
        Figure(
            "verify",
            "forkshare-exclusive default run",
            f"{seconds:.1f} s, verdict {result.verdict}",
            "< 60 s",
            seconds < 60,
        ),
        Figure("verify", "steps/s", f"{result.steps / seconds:.1f} ({result.steps} steps)"),
    ]


def bench_server() -> list[Figure]:
    """Requests/s with wrk; ratios to gunicorn (targets: ≥ 4× keep-alive, ≥ 2× close)."""
    from forkshare.serverbench import run_server_bench

    results = run_server_bench(5.0, ("exclusive",))
    gunicorn = next((r for r in results if r.server == "gunicorn"), None)
    figures = []
    for result in results:
        for label, value, reference, target in (
            ("keep-alive", result.keep_alive, gunicorn.keep_alive if gunicorn else None, 4.0),
            ("Connection: close", result.close, gunicorn.close if gunicorn else None, 2.0),
        ):
            if value is None:
                figures.append(Figure("server", f"{result.server} {label}", result.note or "—"))
                continue
            ratio = value / reference if reference else None
            met = None
            if result.server.startswith("forkshare") and ratio is not None:
                met = ratio >= target
            shown = f"{value:,.0f} req/s" + (f" ({ratio:.1f}× gunicorn)" if ratio else "")
            figures.append(
                Figure(
                    "server",
                    f"{result.server} {label}",
                    shown,
                    f"≥ {target:.0f}× gunicorn" if met is not None else "",
                    met,
                )
            )
    return figures


SECTIONS: dict[str, Callable[[], list[Figure]]] = {
    "explorer": bench_explorer,
    "coverage": bench_coverage,
    "proofs": bench_proofs,
    "verify": bench_verify,
    "server": bench_server,
}


def build_parser() -> argparse.ArgumentParser:
    """The ``forkshare bench`` argument parser (the docs' reference is generated from it)."""
    parser = argparse.ArgumentParser(
        prog="forkshare bench",
        description="Measure the explorer, model coverage, the proof suite, the verifier and the "
        "server, and print each figure against its target.",
    )
    parser.add_argument(
        "--only",
        choices=sorted(SECTIONS),
        action="append",
        help="run only this section (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON record per figure")
    return parser


def main(argv: Sequence[str]) -> int:
    """Run ``forkshare bench``; exit 0 when it ran (figures below target are reported, not fatal)."""
    args = build_parser().parse_args(list(argv))
    figures: list[Figure] = []
    console = Console(stderr=True)
    for name in args.only or list(SECTIONS):
        with console.status(f"bench: {name} …"):
            figures.extend(_run_section(name))
    if args.json:
        for figure in figures:
            print(json.dumps(_as_dict(figure)))
    else:
        Console(width=160).print(_table(figures))
    return 0


def _run_section(name: str) -> list[Figure]:
    try:
        return SECTIONS[name]()
    except (ImportError, AttributeError) as error:
        return [Figure(name, "not measured", f"section unavailable: {error}")]


def _as_dict(figure: Figure) -> dict[str, object]:
    return {k: getattr(figure, k) for k in ("section", "name", "value", "target", "met")}


def _table(figures: list[Figure]) -> Table:
    table = Table(title="forkshare bench")
    for column in ("section", "figure", "measured", "target", "met"):
        table.add_column(column)
    for f in figures:
        met = "" if f.met is None else ("yes" if f.met else "NO")
        table.add_row(f.section, f.name, f.value, f.target, met)
    return table
