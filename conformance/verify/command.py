"""``forkshare verify``: hold a prefork server against the model, from outside.

Exit status: 0 the target conforms, 1 a property is violated (its name, the shrunk steps, what was
observed and what the model allowed, and a replay command are printed), 2 usage or profile error,
3 the target failed to start (with its stderr). Every process the verifier starts is killed by
process group at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from forkshare.conformance.verify.options import budget_from, build_parser, profile_from
from forkshare.conformance.verify.profile import Profile, load_bundled, profile_from_table, to_table
from forkshare.conformance.verify.verify import DEFAULT_BOUNDS, Result, verify
from forkshare.errors import ForkshareError, UsageError
from forkshare.model.config import Bounds, Config, Mode, ParentDeath

CANNOT_OBSERVE = (
    "liveness: a state the model allows as intermediate (a worker not yet respawned, a client "
    "not yet served) is accepted however long it lasts",
    "the accept-mutex lock word (hidden state; checked only through a --trace file, or as the "
    "one worker whose epoll set holds the listener)",
    "wake-ups per connection (the herd) and fairness: not compared in the random run",
    "which model worker is which real one: processes are compared as a multiset per role",
)


def main(argv: list[str]) -> int:
    """Run ``forkshare verify``; returns the exit status (see ``forkshare verify --help``)."""
    args = build_parser().parse_args(argv)
    try:
        return _verify(args)
    except ForkshareError as error:
        print(f"forkshare verify: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:  # the backends' process groups are already stopped (teardown)
        print("forkshare verify: interrupted", file=sys.stderr)
        return 130


def _verify(args: argparse.Namespace) -> int:
    budget = budget_from(args)
    err = Console(stderr=True)
    if args.replay is not None:
        profile, config, steps = load_replay(args.replay)
        with err.status(f"replaying {args.replay}"):
            result = verify(profile, scenario=steps, config=config)
    else:
        profile = profile_from(args)
        with err.status(f"verifying {profile.name}") as status:

            def progress(done: int, seconds: float) -> None:
                status.update(
                    f"verifying {profile.name}: {done} steps, {done / seconds:.1f} steps/s"
                )

            result = verify(
                profile,
                workers=budget.workers,
                examples=max(budget.examples, 1),
                steps=budget.steps,
                shrink=budget.shrink,
                progress=progress,
            )
    replay_file = None
    if result.violation is not None:
        replay_file = args.replay_out or Path(f"forkshare-replay-{profile.name}.json")
        save_replay(replay_file, profile, result)
    if args.json:
        print(json.dumps(to_json(result, replay_file), indent=2))
    else:
        render(result, replay_file, Console())
    return 0 if result.violation is None else 1


# --------------------------------------------------------------------------- replay files


def save_replay(path: Path, profile: Profile, result: Result) -> None:
    """Write the profile, the model configuration and the violating steps as JSON."""
    assert result.violation is not None
    table = to_table(profile)
    config = asdict(result.config)
    path.write_text(
        json.dumps(
            {
                "name": profile.name,
                "profile": table,
                "config": config,
                "property": result.violation.prop,
                "steps": [[name, list(args)] for name, args in result.violation.steps],
            },
            indent=2,
            default=str,
        )
    )


def load_replay(path: Path) -> tuple[Profile, Config, list[tuple[str, tuple[int, ...]]]]:
    """Read a file written by :func:`save_replay`.

    Raises:
        UsageError: the file is missing or malformed.
    """
    try:
        data = json.loads(path.read_text())
        profile = profile_from_table(data["name"], data["profile"], f"replay file {path}")
        raw = dict(data["config"])
        bounds = Bounds(**raw.pop("bounds"))
        config = Config(
            **{**raw, "mode": Mode(raw["mode"]), "parent_death": ParentDeath(raw["parent_death"])},
            bounds=bounds,
        )
        steps = [(str(name), tuple(int(a) for a in args)) for name, args in data["steps"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(
            f"cannot replay {path}: {error}; pass a file written by forkshare verify"
        ) from None
    return profile, config, steps


# --------------------------------------------------------------------------- reports


def render(result: Result, replay_file: Path | None, console: Console) -> None:
    """The verdict table, any finding, the violation in detail, and the closing notes."""
    console.print(
        f"[bold]{result.target}[/]: mode {result.config.mode}, parent death "
        f"{result.config.parent_death}, {result.config.workers} workers — {result.steps} steps in "
        f"{result.seconds:.1f} s ({result.steps_per_second:.1f} steps/s)"
    )
    table = Table("property", "verdict")
    for name, verdict in result.verdicts().items():
        style = (
            "red"
            if verdict.startswith("VIOLATED")
            else ("dim" if verdict == "not claimed" else "green")
        )
        table.add_row(name, f"[{style}]{verdict}[/]")
    for finding in result.findings:
        table.add_row("finding", finding)
    for report in result.traces[:1]:
        table.add_row(
            "trace validation", f"{len(result.traces)} trace(s), first: {report.events} events"
        )
    console.print(table)
    violation = result.violation
    if violation is not None:
        console.print(f"[red bold]violated: {violation.prop}[/] — {violation.message}")
        for number, (name, args) in enumerate(violation.steps, 1):
            console.print(f"  {number}. {name}({', '.join(map(str, args))})")
        console.print(f"  observed: {violation.observed}")
        for allowed in violation.allowed[:6]:
            console.print(f"  allowed:  {allowed}")
        console.print(f"  replay:   forkshare verify --replay {replay_file}")
    console.print("[dim]cannot observe: " + "; ".join(CANNOT_OBSERVE) + "[/]")


def to_json(result: Result, replay_file: Path | None) -> dict[str, Any]:
    """The result as a JSON-ready dict."""
    violation = result.violation
    return {
        "target": result.target,
        "verdict": result.verdict,
        "steps": result.steps,
        "seconds": round(result.seconds, 3),
        "steps_per_second": round(result.steps_per_second, 2),
        "properties": result.verdicts(),
        "findings": result.findings,
        "violation": None
        if violation is None
        else {
            "property": violation.prop,
            "message": violation.message,
            "steps": [[n, list(a)] for n, a in violation.steps],
            "observed": violation.observed,
            "allowed": violation.allowed,
            "replay": f"forkshare verify --replay {replay_file}",
        },
    }


def run_default_verification(target: str) -> Result:
    """What ``forkshare verify --target TARGET`` runs by default (for ``forkshare bench``)."""
    return verify(load_bundled(target), bounds=DEFAULT_BOUNDS)
