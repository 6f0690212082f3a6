"""The ``forkshare`` command: a thin, lazy dispatcher to each package's own command module.

Every sub-command lives next to the code it drives and exposes ``main(argv: list[str]) -> int``.
The dispatcher imports that module only when the sub-command runs, so ``forkshare serve`` never
loads z3 or Hypothesis, and ``forkshare explore`` never loads the server.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from forkshare import __version__
from forkshare.errors import ForkshareError


@dataclass(frozen=True, slots=True)
class SubCommand:
    """One sub-command: where its ``main`` lives and the one line ``forkshare --help`` shows."""

    module: str
    summary: str


SUBCOMMANDS: dict[str, SubCommand] = {
    "demo": SubCommand(
        "forkshare.demo",
        "a guided tour: how the workers share the master's socket, live (what make demo runs)",
    ),
    "explore": SubCommand(
        "forkshare.explore", "exhaustively explore the model and check every invariant"
    ),
    "prove": SubCommand(
        "forkshare.prove", "prove the invariants with z3 for any number of workers"
    ),
    "serve": SubCommand("forkshare.impl.command", "run the reference prefork server (Linux)"),
    "verify": SubCommand(
        "forkshare.conformance.verify.command", "verify a running server against the model"
    ),
    "inspect": SubCommand(
        "forkshare.conformance.observe.command", "show how a live server shares its sockets"
    ),
    "trace": SubCommand(
        "forkshare.conformance.strace.command", "strace a server and check its socket syscalls"
    ),
    "bench": SubCommand("forkshare.bench", "measure the explorer, the proofs and the server"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; each sub-command parses its own arguments."""
    parser = argparse.ArgumentParser(
        prog="forkshare",
        description="How a prefork server shares its listening sockets: model, proofs, "
        "reference server and verifier. Run 'forkshare COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"forkshare {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, sub in SUBCOMMANDS.items():
        commands.add_parser(name, help=sub.summary, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``forkshare``; returns the process exit status (0 ok, 1 failure, 2 usage error)."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not args or args[0] not in SUBCOMMANDS:
        parser.parse_args(args)  # prints help or the usage error and exits 0/2
        return 2
    name, rest = args[0], args[1:]
    module = importlib.import_module(SUBCOMMANDS[name].module)
    try:
        status: int = module.main(rest)
    except ForkshareError as error:
        print(f"forkshare {name}: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"forkshare {name}: interrupted", file=sys.stderr)
        return 130
    return status
