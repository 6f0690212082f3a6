"""``forkshare explore``: exhaustive exploration of the model, with readable counterexamples.

Exit status: 0 when every invariant holds, 1 when one fails (a counterexample is printed), 2 for a
usage error. With ``--all`` (the demo), 0 means every safe mode holds and every unsafe variant
fails exactly as expected.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from forkshare.errors import UsageError
from forkshare.model.config import Bounds, Config, Mode, ParentDeath
from forkshare.model.explorer import Exploration, Violation, explore
from forkshare.model.trace_text import describe_state
from forkshare.model.variants import VARIANTS


@dataclass(frozen=True, slots=True)
class Run:
    """One exploration to perform: a configuration, and the violation it must produce (if unsafe)."""

    label: str
    config: Config
    expected: str | None = None


def build_parser() -> argparse.ArgumentParser:
    """The ``forkshare explore`` argument parser."""
    defaults = Bounds()
    parser = argparse.ArgumentParser(
        prog="forkshare explore",
        description="Visit every reachable state of the model (breadth first, up to renaming of "
        "processes) and check every invariant. A violated invariant is printed with a shortest "
        "trace of named actions.",
    )
    parser.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.EXCLUSIVE.value)
    parser.add_argument(
        "--variant",
        choices=sorted(VARIANTS),
        help="an unsafe design to explore (sets its mode; it must violate its invariant)",
    )
    parser.add_argument("--all", action="store_true", help="every mode and every unsafe variant")
    parser.add_argument("--workers", type=_positive, default=2, help="worker slots (default 2)")
    parser.add_argument("--connections", type=_natural, default=2, help="clients (default 2)")
    parser.add_argument("--worker-connections", type=_positive, default=1)
    parser.add_argument("--backlog", type=_natural, default=1)
    parser.add_argument(
        "--parent-death",
        choices=[p.value for p in ParentDeath],
        default=ParentDeath.WORKERS_EXIT.value,
    )
    for name in ("kills", "stops", "reloads", "upgrades", "master-kills", "shutdowns"):
        attr = name.replace("-", "_")
        parser.add_argument(
            f"--{name}",
            type=_natural,
            default=None,
            help=f"budget of {name} (default {getattr(defaults, attr)}, or the variant's own "
            "budget with --variant)",
        )
    parser.add_argument(
        "--max-states",
        type=_positive,
        default=None,
        help="stop after this many states (the result is then incomplete)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per run")
    return parser


def _natural(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative; give 0 or more")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is below 1; give 1 or more")
    return value


def runs_from(args: argparse.Namespace) -> list[Run]:
    """The explorations the arguments ask for."""
    fallback = VARIANTS[args.variant].bounds if args.variant else Bounds()
    budgets = {
        name: getattr(fallback, name) if getattr(args, name) is None else getattr(args, name)
        for name in ("kills", "stops", "reloads", "upgrades", "master_kills", "shutdowns")
    }
    bounds = Bounds(connections=args.connections, **budgets)
    base = Config(
        mode=Mode(args.mode),
        workers=args.workers,
        worker_connections=args.worker_connections,
        backlog=args.backlog,
        parent_death=ParentDeath(args.parent_death),
        bounds=bounds,
    )
    if args.all:
        runs = [Run(mode.value, replace(base, mode=mode)) for mode in Mode]
        runs += [_variant_run(name, base, use_variant_bounds=True) for name in VARIANTS]
        return runs
    if args.variant:
        return [_variant_run(args.variant, base, use_variant_bounds=False)]
    return [Run(args.mode, base)]


def _variant_run(name: str, base: Config, *, use_variant_bounds: bool) -> Run:
    variant = VARIANTS[name]
    config = variant.apply(base)
    if use_variant_bounds:
        config = replace(config, bounds=variant.bounds)
    return Run(f"{variant.mode.value} + {name}", config, variant.expected)


def run_passes(run: Run, result: Exploration) -> bool:
    """Safe runs pass when nothing is violated; unsafe ones when the expected invariant fails."""
    if run.expected is None:
        return result.ok
    return run.expected in result.violations


def main(argv: Sequence[str]) -> int:
    """Run ``forkshare explore``."""
    parser = build_parser()
    args = parser.parse_args(list(argv))
    if args.all and args.variant:
        raise UsageError("--all already explores every variant; drop --variant or --all")
    try:
        runs = runs_from(args)
    except ValueError as error:
        raise UsageError(f"{error}; fix the option") from error
    console = Console(file=sys.stdout, highlight=False, width=160, soft_wrap=True)
    results = [(run, _explore_with_progress(run, args, console)) for run in runs]
    if args.json:
        for run, result in results:
            print(json.dumps(_as_json(run, result)))
    else:
        _print_report(console, results)
    if args.all:
        return 0 if all(run_passes(run, result) for run, result in results) else 1
    return 0 if all(result.ok for _, result in results) else 1


def _explore_with_progress(run: Run, args: argparse.Namespace, console: Console) -> Exploration:
    stderr = Console(file=sys.stderr, highlight=False)
    with stderr.status(f"exploring {run.label} …") as status:

        def progress(states: int, frontier: int) -> None:
            status.update(f"exploring {run.label}: {states:,} states, frontier {frontier:,}")

        return explore(run.config, max_states=args.max_states, progress=progress)


def _print_report(console: Console, results: list[tuple[Run, Exploration]]) -> None:
    table = Table(title="forkshare explore")
    for column in (
        "run",
        "workers×conns",
        "states",
        "transitions",
        "s",
        "states/s",
        "max wake-ups",
        "verdict",
    ):
        table.add_column(column, justify="right" if column not in ("run", "verdict") else "left")
    for run, result in results:
        table.add_row(
            run.label,
            f"{run.config.workers}×{run.config.bounds.connections}",
            f"{result.states:,}" + ("" if result.complete else " (cut)"),
            f"{result.transitions:,}",
            f"{result.seconds:.2f}",
            f"{result.states_per_second:,.0f}",
            str(result.max_wakeups),
            _verdict(run, result),
        )
    console.print(table)
    for run, result in results:
        for violation in result.violations.values():
            _print_violation(console, run, violation)


def _verdict(run: Run, result: Exploration) -> str:
    if run.expected is None:
        return "all invariants hold" if result.ok else "VIOLATED: " + ", ".join(result.violations)
    if run.expected in result.violations:
        return f"fails as expected: {run.expected}"
    return f"UNEXPECTED: {run.expected} holds"


def _print_violation(console: Console, run: Run, violation: Violation) -> None:
    console.print(
        f"\n[bold]{escape(run.label)}[/bold] violates "
        f"[bold]{violation.invariant}[/bold]: {escape(violation.claim)}"
    )
    for number, step in enumerate(violation.trace, start=1):
        console.print(f"  {number:2}. {step.label:<40} {describe_state(step.state)}", markup=False)


def _as_json(run: Run, result: Exploration) -> dict[str, object]:
    return {
        "run": run.label,
        "mode": run.config.mode.value,
        "workers": run.config.workers,
        "connections": run.config.bounds.connections,
        "states": result.states,
        "transitions": result.transitions,
        "seconds": round(result.seconds, 3),
        "states_per_second": round(result.states_per_second),
        "complete": result.complete,
        "max_wakeups": result.max_wakeups,
        "expected_violation": run.expected,
        "passes": run_passes(run, result),
        "violations": {
            name: [step.label for step in v.trace] for name, v in result.violations.items()
        },
    }
