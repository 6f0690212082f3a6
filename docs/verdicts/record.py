"""Record the verifier's verdict on every bundled target: ``make verdicts``.

For each bundled profile (``forkshare verify --help`` lists them) it runs what a user would run,
``forkshare verify --target NAME --json`` with the default budget (discovery, every scenario that
fits, six random walks), one target after the other, and writes ``docs/verdicts/verdicts.json``:
when and where the runs were made (date, commit, kernel, cores, the servers' versions) and, per
target, the verdict, the exit status, the property and its evidence, the scenario or walk that
found it, the steps, the seconds, and discovery's findings. The docs render the comparison table
of the explanation page from that file and the profiles (``.. forkshare-comparison::``).

Each run takes 20–60 s on a 2-core machine, about ten minutes for all of them. Run from the
repository's root after ``make install``, on a machine with nginx, gunicorn, apache2 and node
installed (a target whose program is missing is recorded as exit 3, "failed to start")::

    .venv/bin/python docs/verdicts/record.py [--only NAME ...] [--out FILE]

``--only`` records the named targets and keeps the others' entries from the existing file.
Verdicts of real servers under SIGKILL and SIGSTOP can depend on timing: a run records what one
run said, and ``docs/verdicts/explanations.toml`` explains each verdict that is not ``conforms``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from forkshare.conformance.verify.profile import bundled_names

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = HERE / "verdicts.json"
RUN_TIMEOUT = 600.0
"""Seconds one ``forkshare verify`` may take before it is recorded as timed out."""
PROGRAMS: dict[str, list[str]] = {
    "nginx": ["nginx", "-v"],
    "apache2": ["apache2", "-v"],
    "node": ["node", "--version"],
    "gunicorn": [sys.executable, "-m", "gunicorn", "--version"],
}
"""The third-party servers the bundled targets run, and how each prints its version."""


def command(target: str, replay_dir: Path, budget: Sequence[str] = ()) -> list[str]:
    """The command recorded for ``target``: the default run (or ``budget``'s flags, for a test),
    as one JSON document; a violation's replay file goes to ``replay_dir``."""
    forkshare = Path(sys.executable).with_name("forkshare")
    replay = replay_dir / f"{target}.json"
    return [
        str(forkshare),
        "verify",
        "--target",
        target,
        "--json",
        "--replay-out",
        str(replay),
        *budget,
    ]


def run_one(target: str, replay_dir: Path, budget: Sequence[str] = ()) -> dict[str, Any]:
    """Verify ``target`` once and keep what the comparison table and a reader need."""
    argv = command(target, replay_dir, budget)
    try:
        done = subprocess.run(
            argv, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return {**_now(), "verdict": "timed out", "exit_code": None, "seconds": RUN_TIMEOUT}
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {
            **_now(),
            "verdict": "no report",
            "exit_code": done.returncode,
            "stderr": done.stderr.strip().splitlines()[-3:],
        }
    return entry_of(report)


def entry_of(report: dict[str, Any]) -> dict[str, Any]:
    """One target's entry from its ``--json`` document."""
    violation = report.get("violation") or {}
    return {
        **_now(),
        "verdict": report["verdict"],
        "exit_code": report["exit_code"],
        "property": violation.get("property"),
        "evidence": violation.get("evidence"),
        "found_by": violation.get("found_by"),
        "violating_steps": violation.get("steps"),
        "seconds": report["seconds"],
        "steps": report["steps"],
        "mode": report["mode"],
        "parent_death": report["parent_death"],
        "findings": report["findings"],
        "scenarios": report["scenarios"],
        "coverage": report["coverage"],
        "discovery": report["discovery"],
    }


def _now() -> dict[str, str]:
    """``{"recorded": the current UTC time}``: each entry says when it was recorded (``--only``
    keeps older ones)."""
    return {"recorded": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}


def version(argv: list[str]) -> str:
    """The first line a program prints about its version, or why there is none."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"not run: {error}"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0] if lines else f"no output (status {done.returncode})"


def circumstances() -> dict[str, Any]:
    """When and where the runs were made."""
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout.strip()
    return {
        **_now(),
        "commit": commit,
        "command": "forkshare verify --target TARGET --json",
        "kernel": platform.release(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "programs": {name: version(argv) for name, argv in PROGRAMS.items()},
    }


def main(argv: list[str] | None = None) -> int:
    """Record the verdicts (see the module docstring); 0 when every target has an entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=bundled_names())
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    previous = json.loads(args.out.read_text())["targets"] if args.out.exists() else {}
    targets: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="forkshare-verdicts-") as scratch:
        for name in bundled_names():
            if args.only and name not in args.only:
                if name in previous:
                    targets[name] = previous[name]
                continue
            print(f"verifying {name} …", file=sys.stderr, flush=True)
            targets[name] = run_one(name, Path(scratch))
            print(f"  {targets[name]['verdict']}", file=sys.stderr, flush=True)
    record = {**circumstances(), "targets": targets}
    args.out.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return 0 if set(targets) == set(bundled_names()) else 1


if __name__ == "__main__":
    sys.exit(main())
