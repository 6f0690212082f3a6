"""Measure the verifier's verdict matrix on the zoo with default runs (the closing-note figures).

    python -m tests.measure_zoo --runs 20 [--only NAME ...] [--json FILE]

For each correct server: how many of ``--runs`` default runs reported anything but "conforms"
(false alarms). For each defective server: over ``--runs`` runs, how many named the expected
property (or one its manifest lists under ``also``), and the median seconds until the verdict.
Every run is a real ``verify`` with discovery, the scenarios and the random walks, as
``forkshare verify --command … --reload-signal … --graceful-signal … --fast-signal …`` does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from forkshare.conformance.verify.verify import Plan, verify
from tests.zoo.test_verdicts import MANIFEST, profile_of


def _run(name: str) -> tuple[str, float, float, str, str]:
    result = verify(profile_of(name), Plan())
    found_by = result.violation.found_by if result.violation is not None else ""
    return (
        result.verdict,
        result.seconds,
        result.steps_per_second,
        result.coverage.describe(),
        found_by,
    )


def measure(name: str, runs: int, jobs: int) -> dict[str, Any]:
    """Run the default verification of zoo server ``name`` ``runs`` times, ``jobs`` at once."""
    entry = MANIFEST[name]
    expected = {entry.get("property"), *entry.get("also", [])} - {None}
    verdicts: Counter[str] = Counter()
    seconds: list[float] = []
    steps_per_second: list[float] = []
    coverage = ""
    found_by: Counter[str] = Counter()
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("fork")) as pool:
        for run, outcome in enumerate(pool.map(_run, [name] * runs), 1):
            verdict, wall, rate, coverage, finder = outcome
            verdicts[verdict] += 1
            seconds.append(wall)
            steps_per_second.append(rate)
            if finder:
                found_by[finder] += 1
            print(f"{name} run {run}: {verdict} in {wall:.1f} s", file=sys.stderr)
    named = sum(
        n for verdict, n in verdicts.items() if verdict.removeprefix("violates ") in expected
    )
    return {
        "server": name,
        "correct": entry["correct"],
        "expected": sorted(expected),
        "runs": runs,
        "verdicts": dict(verdicts),
        "false_alarms": runs - verdicts["conforms"] if entry["correct"] else None,
        "caught_under_its_property": None if entry["correct"] else named,
        "median_seconds": round(statistics.median(seconds), 1),
        "median_steps_per_second": round(statistics.median(steps_per_second), 1),
        "coverage_of_last_run": coverage,
        "found_by": dict(found_by),
    }


def main(argv: list[str]) -> int:
    """Measure and print one line per server (and JSON with ``--json``)."""
    parser = argparse.ArgumentParser(prog="python -m tests.measure_zoo")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (2)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = [measure(name, args.runs, args.jobs) for name in (args.only or MANIFEST)]
    for row in rows:
        outcome = (
            f"false alarms {row['false_alarms']}/{row['runs']}"
            if row["correct"]
            else f"caught under its property {row['caught_under_its_property']}/{row['runs']}"
        )
        print(
            f"{row['server']:26s} {outcome:40s} median {row['median_seconds']:5.1f} s "
            f"{row['median_steps_per_second']:4.1f} steps/s {row['verdicts']}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
