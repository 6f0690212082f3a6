"""``forkshare verify``'s command line: which target, its profile keys as flags, the run's budget.

Every key of :data:`~forkshare.conformance.verify.profile.KEYS` is a flag (``--reload-signal``,
``--parent-death-bound``, ``--sched``, …), so nothing a profile file can say is out of reach of the
command line. A flag overrides the chosen target's profile (bundled ``--target``, ``--profile``
file, or ad-hoc ``--command``); a flag that does not apply to that target's kind (``--sched`` for
an nginx target) is a usage error, exit 2, never silently ignored.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forkshare.conformance.verify.errors import ProfileError
from forkshare.conformance.verify.profile import (
    KEYS,
    Profile,
    bundled_names,
    load_bundled,
    load_file,
    with_values,
)
from forkshare.errors import UsageError

DEFAULT_TARGET = "forkshare-exclusive"

EXIT_CODES = """exit status:
  0  the target conforms (no property broken; findings may still be listed)
  1  a property is violated: its name, the evidence, the shortest steps and a replay command
  2  usage or profile error (the message names the key or flag and the fix)
  3  the target failed to start (its stderr is shown)
  4  unexplained behaviour: the target did something the model does not allow and no property
     explains; the observed and allowed records are shown; please report it
  5  not a prefork server: one process listens and accepts
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``forkshare verify`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="forkshare verify",
        description="Hold a prefork server against the specification, from outside: start it on "
        "127.0.0.1, drive it with the model's actions (clients, SIGKILL/SIGSTOP of workers, the "
        "reload/graceful/fast signals, SIGKILL of the master), observe it through /proc and its "
        "clients, and name the first property it breaks, with the evidence. What its profile "
        "leaves open (sharing mode, parent-death latency, TCP_DEFER_ACCEPT) is discovered first.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--target",
        metavar="NAME",
        help=f"a bundled target: {', '.join(bundled_names())} (default {DEFAULT_TARGET})",
    )
    which.add_argument("--profile", type=Path, metavar="FILE.toml", help="a profile file")
    which.add_argument(
        "--command",
        metavar="CMD",
        help="an ad-hoc target: a command line with {port} {workers} {dir} {python} placeholders",
    )
    which.add_argument(
        "--replay", type=Path, metavar="FILE", help="replay a violation file written by a run"
    )
    keys = parser.add_argument_group(
        "profile keys", "each overrides the target's profile; see `forkshare verify --help`"
    )
    for key in KEYS.values():
        if key.name in ("kind", "command"):
            continue
        keys.add_argument(key.flag, dest=f"key_{key.name}", metavar="VALUE", help=key.help)
    run = parser.add_argument_group("the run")
    run.add_argument("--workers", type=int, default=2, help="worker processes to start (2)")
    run.add_argument("--examples", type=int, default=6, help="random walks after the scenarios (6)")
    run.add_argument("--steps", type=int, default=10, help="steps per random walk (10)")
    run.add_argument(
        "--no-scenarios", action="store_true", help="skip the scenarios generated from the model"
    )
    run.add_argument("--no-discover", action="store_true", help="skip discovery: assume defaults")
    run.add_argument(
        "--no-shrink", action="store_true", help="report the first failure as found (no shrink)"
    )
    run.add_argument(
        "--derandomize", action="store_true", help="the same random walks on every run"
    )
    out = parser.add_argument_group("output")
    out.add_argument("--profile-out", type=Path, metavar="FILE.toml", help="write the profile used")
    out.add_argument("--replay-out", type=Path, metavar="FILE", help="where to save a violation")
    out.add_argument(
        "--json", action="store_true", help="print exactly one JSON document on stdout"
    )
    return parser


@dataclass(frozen=True, slots=True)
class Budget:
    """How much the run does (validated)."""

    workers: int
    examples: int
    steps: int
    scenarios: bool
    discover: bool
    shrink: bool
    derandomize: bool


def budget_from(args: argparse.Namespace) -> Budget:
    """The run's budget from parsed arguments.

    Raises:
        UsageError: a count below 1 (or examples below 0).
    """
    if args.workers < 1 or args.steps < 1 or args.examples < 0:
        raise UsageError(
            "--workers and --steps must be at least 1 and --examples at least 0 "
            f"(got {args.workers}, {args.steps}, {args.examples})"
        )
    return Budget(
        workers=args.workers,
        examples=args.examples,
        steps=args.steps,
        scenarios=not args.no_scenarios,
        discover=not args.no_discover,
        shrink=not args.no_shrink,
        derandomize=args.derandomize,
    )


def profile_from(args: argparse.Namespace) -> Profile:
    """The target's profile with every given flag applied.

    Raises:
        ProfileError: a bad value, or a flag that does not apply to the target's kind (exit 2).
    """
    overrides = given_keys(args)
    if args.command is not None:
        base = Profile(name="command", kind="command", command=args.command)
        where = "--command target"
    elif args.profile is not None:
        base = load_file(args.profile)
        where = f"flags for {args.profile}"
    else:
        base = load_bundled(args.target or DEFAULT_TARGET)
        where = f"flags for target {base.name!r}"
    try:
        return with_values(base, overrides, where)
    except ProfileError as error:
        raise ProfileError(_as_flags(str(error))) from None


def given_keys(args: argparse.Namespace) -> dict[str, Any]:
    """The profile keys given as flags, by key name."""
    return {
        name: getattr(args, f"key_{name}")
        for name in KEYS
        if getattr(args, f"key_{name}", None) is not None
    }


def _as_flags(message: str) -> str:
    """A loader message about keys, reworded with the flags the user typed."""
    for key in KEYS.values():
        message = message.replace(f": {key.name} ", f": {key.flag} ")
    return message
