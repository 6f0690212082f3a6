"""``forkshare verify``: hold a prefork server against the specification, from outside.

Exit status (also in ``--help``): 0 the target conforms; 1 a property is violated (its name, the
evidence, the shortest steps, what was observed and allowed, and a replay command are printed);
2 usage or profile error; 3 the target failed to start (with its stderr); 4 unexplained
behaviour (the model does not allow it and no property explains it); 5 not a prefork server.
Every process the verifier starts is killed by process group at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from rich.console import Console

from forkshare.conformance.verify.options import budget_from, build_parser, profile_from
from forkshare.conformance.verify.profile import (
    Profile,
    load_bundled,
    profile_from_table,
    to_table,
    to_toml,
)
from forkshare.conformance.verify.report import render, to_json
from forkshare.conformance.verify.target_backend import close_all
from forkshare.conformance.verify.verify import DEFAULT_BOUNDS, Plan, Result, verify
from forkshare.errors import ForkshareError, UsageError
from forkshare.model.config import Bounds, Config, Mode, ParentDeath


def main(argv: list[str]) -> int:
    """Run ``forkshare verify``; returns the exit status (see the module docstring)."""
    args = build_parser().parse_args(argv)
    try:
        return _verify(args)
    except ForkshareError as error:
        print(f"forkshare verify: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        close_all()  # an interrupted run may not have reached its teardown
        print("forkshare verify: interrupted; every target started was stopped", file=sys.stderr)
        return 130


def _verify(args: argparse.Namespace) -> int:
    budget = budget_from(args)
    err = Console(stderr=True)
    if args.replay is not None:
        profile, config, steps = load_replay(args.replay)
        with err.status(f"replaying {args.replay}"):
            result = verify(profile, replay=steps, config=config)
    else:
        profile = profile_from(args)
        plan = Plan(
            workers=budget.workers,
            examples=budget.examples,
            steps=budget.steps,
            scenarios=budget.scenarios,
            discover=budget.discover,
            shrink=budget.shrink,
            derandomize=budget.derandomize,
        )
        with err.status(f"verifying {profile.name}") as status:

            def progress(done: int, seconds: float, playing: str) -> None:
                status.update(
                    f"verifying {profile.name}: {playing} — {done} steps, "
                    f"{done / max(seconds, 1e-9):.1f} steps/s"
                )

            result = verify(profile, plan, progress=progress)
    if args.profile_out is not None:
        write_profile(args.profile_out, profile, result)
    replay_file = None
    if result.violation is not None:
        replay_file = args.replay_out or Path(f"forkshare-replay-{profile.name}.json")
        save_replay(replay_file, profile, result)
    if args.json:
        print(json.dumps(to_json(result, replay_file), indent=2))
    else:
        render(result, replay_file, Console())
    return result.exit_code


def write_profile(path: Path, profile: Profile, result: Result) -> None:
    """Write the profile the run used, with nothing left ``auto`` that discovery settled.

    Raises:
        UsageError: the file cannot be written.
    """
    settled = result.profile or profile
    try:
        path.write_text(to_toml(settled, result.profile_comments))
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror}") from None


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


def run_default_verification(target: str) -> Result:
    """What ``forkshare verify --target TARGET`` runs by default (for ``forkshare bench``)."""
    return verify(load_bundled(target), Plan(bounds=DEFAULT_BOUNDS))
