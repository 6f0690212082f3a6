"""``forkshare trace -- CMD …``: which system calls a server makes to share its sockets, by role.

Runs CMD under strace (:mod:`forkshare.conformance.strace.strace_run`), waits until it listens,
optionally makes client connections to see who accepts them, stops it, and prints the socket,
setsockopt, bind, listen, fork/clone, execve, accept4, epoll_create1, epoll_ctl and close calls
grouped by process role, then the rules of :mod:`forkshare.conformance.strace.syscall_trace` with
their evidence.

Exit status: 0 every rule holds; 1 a rule is violated (named in the report); 2 usage error (no
command, strace missing); 3 the command failed to start (its stderr is quoted).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.markup import escape

from forkshare.conformance.observe.role import Role
from forkshare.conformance.strace.errors import ToolMissingError
from forkshare.conformance.strace.strace_log import Syscall
from forkshare.conformance.strace.strace_run import TracedRun, run_under_strace
from forkshare.conformance.strace.syscall_trace import TracedProcess
from forkshare.errors import ForkshareError

_ROLE_ORDER = (Role.LAUNCHER, Role.MASTER, Role.WORKER)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``forkshare trace``."""
    parser = argparse.ArgumentParser(
        prog="forkshare trace",
        description="Run a server under strace and show, by process role, the system calls "
        "that create, share and accept on its listening sockets; check that the master creates "
        "them before forking and that workers never bind.",
        epilog="example: forkshare trace --connections 3 -- nginx -g 'daemon off;'",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for listen")
    parser.add_argument("--connections", type=int, default=0, help="client connections to make")
    parser.add_argument("--port", type=int, help="the port to wait for (default: the first seen)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the server command line")
    return parser


def main(argv: list[str]) -> int:
    """Run ``forkshare trace``; returns the exit status (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the server command after --, e.g. forkshare trace -- nginx")
    if args.connections < 0 or args.timeout <= 0:
        parser.error("--connections must be ≥ 0 and --timeout > 0")
    try:
        strace = _require_strace()
        run = run_under_strace(
            strace, command, port=args.port, connections=args.connections, timeout=args.timeout
        )
    except ForkshareError as error:
        print(f"forkshare trace: {error}", file=sys.stderr)
        return error.exit_code
    if args.json:
        print(json.dumps(_document(command, run), indent=2, default=str))
    else:
        print_report(command, run, _console())
    return 0 if run.analysis.holds else 1


def _require_strace() -> str:
    strace = shutil.which("strace")
    if strace is None:
        raise ToolMissingError("strace is not installed: apt-get install strace")
    return strace


def _console() -> Console:
    return Console(highlight=False) if sys.stdout.isatty() else Console(width=200, highlight=False)


# ---------------------------------------------------------------- the report


def print_report(command: list[str], run: TracedRun, console: Console) -> None:
    """Print the calls by role, who accepted, what the clients saw, and the rules."""
    analysis = run.analysis
    console.print(f"[bold]forkshare trace[/bold]: {escape(' '.join(command))}  (port {run.port})")
    for role in _ROLE_ORDER:
        for process in analysis.with_role(role):
            _print_process(process, console)
    helpers = analysis.with_role(Role.HELPER)
    if helpers:
        console.print(f"\n{len(helpers)} helper process(es) (exited before the server listened)")
    if run.clients:
        outcomes = ", ".join(str(c.outcome) for c in run.clients)
        console.print(f"\nclients: {len(run.clients)} connection(s): {outcomes}")
    console.print("\n[bold]rules[/bold]")
    for verdict in analysis.verdicts:
        mark = "[green]✓ holds[/green]" if verdict.holds else "[red]✗ VIOLATED[/red]"
        console.print(f"  {mark} {verdict.rule}")
        for line in verdict.evidence:
            console.print(f"      {escape(line)}")


def _print_process(process: TracedProcess, console: Console) -> None:
    parent = f", child of {process.parent}" if process.parent is not None else ""
    console.print(
        f"\n[bold]{process.role} {process.pid}[/bold] ({escape(process.program)}{parent})"
    )
    for call in process.calls:
        console.print(f"  {call.time} {escape(_short(call))}")
    for address, count in process.accepts.items():
        console.print(f"  accepted {count} connection(s) on {address}")
    for errno, count in process.failed_accepts.items():
        console.print(f"  accept failed {count}× with {errno}")
    if process.exit is not None:
        how = process.exit.signal or f"status {process.exit.status}"
        console.print(f"  {process.exit.time} exited ({how})")


def _short(call: Syscall, width: int = 150) -> str:
    text = str(call)
    return text if len(text) <= width else text[: width - 15] + " … " + text[-12:]


def _document(command: list[str], run: TracedRun) -> dict[str, Any]:
    return {
        "command": command,
        "port": run.port,
        "holds": run.analysis.holds,
        "analysis": asdict(run.analysis),
        "clients": [asdict(c) for c in run.clients],
    }


__all__ = ["build_parser", "main", "print_report"]
