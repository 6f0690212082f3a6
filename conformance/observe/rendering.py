"""Showing a :class:`ServerSnapshot` to people and programs: rich tables and JSON.

The text answers the question forkshare started from — which processes share which listening
socket, through which fd numbers, and who is registered to accept — in three tables: listening
sockets (with queue lengths and holders), processes (fds, epoll registrations, wchan), and
connections still queued. The picture of the kernel objects behind them is
:mod:`~forkshare.conformance.observe.kernel_picture`'s (text and graphviz DOT).
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from forkshare.conformance.observe.kernel_objects import KernelObjects
from forkshare.conformance.observe.observer import ProcessView, ServerSnapshot
from forkshare.conformance.observe.procfs import Endpoint
from forkshare.conformance.observe.sharing_mode import ModeInference

# epoll_ctl(2) bits, in the order a reader expects them.
_EPOLL_BITS = (
    (0x1, "IN"),
    (0x2, "PRI"),
    (0x4, "OUT"),
    (0x8, "ERR"),
    (0x10, "HUP"),
    (0x2000, "RDHUP"),
    (0x10000000, "EXCLUSIVE"),
    (0x20000000, "WAKEUP"),
    (0x40000000, "ONESHOT"),
    (0x80000000, "ET"),
)


def epoll_event_names(events: int, brief: bool = False) -> str:
    """``IN|ERR|HUP|EXCLUSIVE`` for 0x10000019; unknown bits are kept as hex. ``brief`` leaves out
    ERR and HUP, which epoll_ctl(2) always reports whether registered or not."""
    always = 0x8 | 0x10 if brief else 0
    names = [name for bit, name in _EPOLL_BITS if events & bit & ~always]
    rest = events & ~sum(bit for bit, _ in _EPOLL_BITS)
    return "|".join(names + ([hex(rest)] if rest else [])) or "0"


def _title(snap: ServerSnapshot) -> str:
    parts = []
    if snap.port is not None:
        parts.append(f"port {snap.port}")
    if snap.root_pid is not None:
        parts.append(f"pid {snap.root_pid}")
    return " and ".join(parts)


# ---------------------------------------------------------------- text


def render_text(snap: ServerSnapshot, mode: ModeInference, console: Console) -> None:
    """Print the snapshot as a heading, three tables and the inferred mode."""
    console.print(f"[bold]forkshare inspect[/bold]: {_title(snap)}")
    console.print(_listener_table(snap))
    console.print(_process_table(snap))
    console.print(_queued_line(snap))
    console.print(f"[bold]sharing mode[/bold]: {mode.mode} — {mode.reason}")


def _listener_table(snap: ServerSnapshot) -> Table:
    table = Table(title="Listening sockets", title_justify="left")
    for column in ("address", "socket", "accept queue", "held by (pid: fd)", "in epoll set of"):
        table.add_column(column, overflow="fold")
    for listener in snap.listeners:
        holders = [
            f"{p.pid}: {','.join(map(str, p.fds_on(listener.inode)))}"
            for p in snap.processes
            if listener.inode in p.held_inodes
        ]
        table.add_row(
            str(listener.address),
            f"socket:[{listener.inode}]",
            str(listener.rx_queue),
            "  ".join(holders) or "-",
            ", ".join(map(str, snap.registrants(listener.inode))) or "-",
        )
    return table


def _process_table(snap: ServerSnapshot) -> Table:
    table = Table(title="Processes", title_justify="left")
    for column in ("pid", "ppid", "role", "st", "wchan", "fd → listening socket", "epoll set"):
        table.add_column(column, overflow="fold")
    table.add_column("conns", justify="right")
    table.add_column("command", overflow="ellipsis", no_wrap=True, max_width=48)
    for process in snap.processes:
        table.add_row(
            str(process.pid),
            str(process.ppid),
            str(process.role),
            process.state,
            process.wchan or "(running)",
            _fd_cell(process),
            _epoll_cell(process),
            str(len(process.connections)),
            process.cmdline or process.name,
        )
    return table


def _fd_cell(process: ProcessView) -> str:
    lines = [
        f"{fd.fd} → socket:[{fd.inode}]" + (" cloexec" if fd.cloexec else "")
        for fd in process.listener_fds
    ]
    return "\n".join(lines) or "-"


def _epoll_cell(process: ProcessView) -> str:
    lines = [
        f"epoll {r.epoll_fd}: fd {r.target_fd} {epoll_event_names(r.events, brief=True)} "
        f"({r.events:x})"
        for r in process.registrations
    ]
    return "\n".join(lines) or "-"


def _queued_line(snap: ServerSnapshot) -> str:
    if not snap.queued:
        return "Queued connections (not yet accepted): none"
    clients = ", ".join(f"{q.client} ({q.state.name})" for q in snap.queued)
    return f"Queued connections (not yet accepted, K12): {len(snap.queued)}: {clients}"


# ---------------------------------------------------------------- JSON


def to_json(snap: ServerSnapshot, mode: ModeInference, objects: KernelObjects) -> str:
    """The snapshot, the inferred mode and the kernel objects as one JSON object (enums as their
    names/values)."""
    document = {"snapshot": asdict(snap), "mode": asdict(mode), "kernel_objects": asdict(objects)}
    return json.dumps(document, indent=2, default=_json_default)


def _json_default(value: object) -> Any:
    if isinstance(value, enum.Enum):
        return value.value if isinstance(value, str) else value.name
    if isinstance(value, Endpoint):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
