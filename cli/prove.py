"""``forkshare prove``: z3 proves the model's invariants for any number of workers, connections,
sockets and generations, and refutes every unsafe design with a replayed counterexample.

Exit status: 0 when every obligation is proved (or fails only because of a known defect of the
model, listed in ``proofs/issues.py`` and confirmed by a replayed trace), every action has a
witness, every freedom's witness is a run of the encoding and every unsafe variant is refuted; 1
otherwise, with the decoded counterexample; 2 for a usage error (``--only`` with a name that
names nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from forkshare.proofs.report import Kind, Record, Result, SuiteReport
from forkshare.proofs.suite import run_proof_suite


def build_parser() -> argparse.ArgumentParser:
    """The ``forkshare prove`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="forkshare prove",
        description="Prove the model's invariants inductive with z3 for every size, check a "
        "witness for every action and the progress facts, check that every freedom's witness "
        "is a run of the encoding, and refute every unsafe variant with a shortest "
        "counterexample replayed through the Python model.",
    )
    parser.add_argument("--json", action="store_true", help="one JSON document: every record")
    parser.add_argument(
        "--only",
        metavar="NAME",
        help="only the obligations about NAME: an action, invariant, lemma, progress fact, "
        "unsafe variant, configuration, model issue or freedom (F1, …, K19, K20)",
    )
    parser.add_argument(
        "--all-rows",
        action="store_true",
        help="one table row per obligation (default: one row per goal, summed over actions)",
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="worker processes (default: CPUs, at most 4)"
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """Run ``forkshare prove``; returns 0 when everything is proved, 1 otherwise."""
    args = build_parser().parse_args(list(argv))
    report = run_proof_suite(args.only, jobs=args.jobs)
    try:
        if args.json:
            print(json.dumps(_as_json(report), indent=1), flush=True)
        else:
            console = Console(file=sys.stdout, highlight=False, width=160, soft_wrap=True)
            _print_report(console, report, all_rows=args.all_rows)
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (``forkshare prove --json | head``): not an error of the
        # proofs, whose verdict stays the exit status. Point stdout at /dev/null so that
        # Python's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0 if report.ok else 1


def _as_json(report: SuiteReport) -> dict[str, object]:
    slowest = report.slowest
    return {
        "ok": report.ok,
        "wall_seconds": round(report.wall_seconds, 3),
        "slowest_ms": round(slowest.ms, 3) if slowest else 0.0,
        "totals": {f"{k}/{r}": n for (k, r), n in sorted(report.totals().items())},
        "bases": {f"{k}/{b}": n for (k, b), n in sorted(report.bases().items())},
        "records": [r.to_json() for r in report.records],
    }


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: a record, or several summed over modes and actions."""

    kind: str
    target: str
    action: str
    invariant: str
    result: Result
    text: str
    ms: float


def _print_report(console: Console, report: SuiteReport, *, all_rows: bool) -> None:
    rows = [_row(r) for r in report.records] if all_rows else _grouped(report.records)
    table = Table(title="forkshare prove")
    for column in ("kind", "target", "action", "invariant", "result", "ms"):
        table.add_column(column, justify="right" if column == "ms" else "left", no_wrap=True)
    for row in rows:
        text = _styled(row.result, row.text)
        table.add_row(row.kind, row.target, row.action, row.invariant, text, f"{row.ms:.1f}")
    console.print(table)
    _print_traces(console, report)
    _print_totals(console, report)


def _row(record: Record) -> Row:
    steps = sum(1 for line in record.detail.splitlines() if line[:1].isdigit())
    text = f"{record.result.value} ({steps} steps)" if steps else record.result.value
    return Row(
        record.kind.value,
        record.target,
        record.action,
        record.invariant,
        record.result,
        text,
        record.ms,
    )


def _grouped(records: list[Record]) -> list[Row]:
    """Init and consecution obligations summed per goal over modes and actions (the result column
    counts how each ended); every other record is a row of its own."""
    groups: dict[tuple[Kind, str], list[Record]] = defaultdict(list)
    single: list[Row] = []
    for record in records:
        if record.kind in (Kind.INIT, Kind.CONSECUTION):
            groups[(record.kind, record.invariant)].append(record)
        else:
            single.append(_row(record))
    return [_summary(kind, goal, members) for (kind, goal), members in groups.items()] + single


def _summary(kind: Kind, goal: str, members: list[Record]) -> Row:
    counts = Counter(r.result for r in members)
    failing = (Result.FAILED, Result.UNKNOWN, Result.KNOWN_ISSUE)
    worst = next((r for r in failing if counts[r]), Result.PROVED)
    targets = sorted({r.target for r in members})
    actions = {r.action for r in members}
    return Row(
        kind.value,
        f"{len(targets)} configs" if len(targets) > 1 else targets[0],
        f"{len(actions)} actions" if len(actions) > 1 else next(iter(actions)),
        goal,
        worst,
        " · ".join(f"{n} {result.value}" for result, n in counts.items()),
        max(r.ms for r in members),
    )


def _styled(result: Result, text: str) -> str:
    colour = {
        Result.PROVED: "green",
        Result.FOUND: "green",
        Result.KNOWN_ISSUE: "yellow",
        Result.RESOLVED: "red",
        Result.FAILED: "red",
        Result.UNKNOWN: "red",
        Result.MISSING: "red",
    }[result]
    return f"[{colour}]{escape(text)}[/{colour}]"


def _print_traces(console: Console, report: SuiteReport) -> None:
    for record in report.records:
        shown = record.kind in (Kind.REFUTATION, Kind.MODEL_ISSUE) or not record.ok
        if not shown or not record.detail:
            continue
        head = f"{record.kind.value} · {record.target} · {record.action or record.invariant}"
        console.print(f"\n[bold]{escape(head)}[/bold] — {escape(record.result.value)}")
        for line in record.detail.splitlines():
            console.print(f"  {line}", markup=False)


def _print_totals(console: Console, report: SuiteReport) -> None:
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    for (kind, result), n in report.totals().items():
        by_kind[kind][result] += n
    bases: dict[str, Counter[str]] = defaultdict(Counter)
    for (kind, basis), n in report.bases().items():
        bases[kind][basis] += n
    console.print()
    for kind, counts in by_kind.items():
        parts = ", ".join(f"{n} {result}" for result, n in sorted(counts.items()))
        how = ", ".join(f"{n} by {basis}" for basis, n in sorted(bases[kind].items()))
        console.print(f"{kind:>12}: {parts}" + (f" ({how})" if how else ""), markup=False)
    slowest = report.slowest
    if slowest is not None:
        console.print(
            f"{len(report.records)} obligations in {report.wall_seconds:.2f} s; slowest check "
            f"{slowest.ms:.0f} ms ({slowest.kind.value} {slowest.target} "
            f"{slowest.action} {slowest.invariant})".rstrip(),
            markup=False,
        )
    verdict = "[green]all proved[/green]" if report.ok else "[red]NOT PROVED[/red]"
    console.print(verdict)
