"""``forkshare inspect``: the live picture of how any running server shares its listening sockets.

``forkshare inspect --port P`` (or ``--pid PID``) prints which processes hold which listening
socket and through which fd numbers, the accept-queue lengths, every epoll registration (with
EPOLLEXCLUSIVE shown), the connections not yet accepted, and the sharing mode inferred from all
that; then the picture of what is shared (:mod:`~forkshare.conformance.observe.kernel_objects`):
each descriptor → its open file description → the socket and its options → the accept queue.
``--json`` prints the same as JSON; ``--svg FILE`` also draws the picture with graphviz's ``dot``.

Exit status: 0 shown; 1 runtime failure (``dot`` missing or failing); 2 usage error (no such pid,
nothing listens on the port, /proc/PID/fd not readable).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.text import Text

from forkshare.conformance.observe.errors import GraphvizMissingError
from forkshare.conformance.observe.kernel_objects import kernel_objects
from forkshare.conformance.observe.kernel_picture import render_lines, to_dot
from forkshare.conformance.observe.observer import snapshot
from forkshare.conformance.observe.rendering import render_text, to_json
from forkshare.conformance.observe.sharing_mode import infer_mode
from forkshare.errors import ForkshareError

PICTURE_HEADING = "descriptor → open file description → socket → accept queue"


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``forkshare inspect``."""
    parser = argparse.ArgumentParser(
        prog="forkshare inspect",
        description="Show how a running server shares its listening sockets, read from /proc: "
        "processes and the fds pointing at each listening socket, queue lengths, epoll "
        "registrations, the sharing mode inferred, and the picture of what is shared: each "
        "descriptor -> its open file description -> the socket and its options -> the accept "
        "queue. Needs root or the server's uid (the socket options also need ptrace permission; "
        "without it they show as unknown).",
    )
    parser.add_argument("--port", type=int, help="the TCP port the server listens on")
    parser.add_argument("--pid", type=int, help="the server's master pid (with --port: filter)")
    parser.add_argument(
        "--svg", type=Path, metavar="FILE", help="also draw the picture to FILE (graphviz)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    return parser


def main(argv: list[str]) -> int:
    """Run ``forkshare inspect``; returns the exit status (0 shown, 1 failure, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.port is None and args.pid is None:
        parser.error("say which server: --port P (the port it listens on) or --pid PID")
    if args.port is not None and not 0 < args.port < 65536:
        parser.error(f"--port {args.port} is not a TCP port (1-65535)")
    try:
        return _inspect(args)
    except ForkshareError as error:
        print(f"forkshare inspect: {error}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:  # `forkshare inspect … | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _inspect(args: argparse.Namespace) -> int:
    snap = snapshot(root_pid=args.pid, port=args.port)
    mode = infer_mode(snap)
    objects = kernel_objects(snap)
    if args.json:
        print(to_json(snap, mode, objects))
    else:
        console = _console()
        render_text(snap, mode, console)
        console.print(f"\n[bold]What is shared[/bold]: {PICTURE_HEADING}")
        console.print(Text("\n".join(render_lines(objects))))
    sys.stdout.flush()
    if args.svg is not None:
        draw_svg(to_dot(objects, title=f"{_title(args)}: {mode.mode}"), args.svg)
    return 0


def _title(args: argparse.Namespace) -> str:
    parts = [f"port {args.port}"] if args.port is not None else []
    parts += [f"pid {args.pid}"] if args.pid is not None else []
    return " and ".join(parts)


def _console() -> Console:
    """A terminal's own width; when piped, wide enough that no cell is cut."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def draw_svg(dot_source: str, path: Path) -> None:
    """Render ``dot_source`` to the SVG file ``path`` with graphviz.

    Raises:
        GraphvizMissingError: when ``dot`` is not installed or fails.
    """
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissingError(
            "--svg needs graphviz's 'dot', which is not on PATH: apt-get install graphviz"
        )
    result = subprocess.run(
        [dot, "-Tsvg", "-o", str(path)],
        input=dot_source,
        text=True,
        capture_output=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise GraphvizMissingError(f"dot -Tsvg failed ({result.returncode}): {result.stderr}")
