"""A state in one readable line, for counterexample traces.

Example: ``master1{sock0} worker2{sock0} worker3{sock0}·stopped | sock0 q=[conn0] | conn0 queued``.
Processes show the sockets they hold and what is unusual about them; sockets show their queue;
connections show their fate and owner.
"""

from __future__ import annotations

from forkshare.model.state import Connection, Fate, Listener, Phase, Process, Shutdown, System


def describe_state(state: System) -> str:
    """``state`` as one line: processes | listening sockets | connections."""
    parts = [
        " ".join(describe_process(state, p) for p in state.processes) or "no process",
        " ".join(describe_listener(lst) for lst in state.listeners) or "no socket",
    ]
    if state.connections:
        parts.append(" ".join(describe_connection(c) for c in state.connections))
    if state.mutex:
        parts.append(f"mutex={_process_name(state, state.mutex)}")
    return " | ".join(parts)


def describe_process(state: System, proc: Process) -> str:
    """e.g. ``worker3{sock0}·stopped·orphan``."""
    fds = ",".join(f"sock{sid}" for sid in sorted(proc.fds))
    marks = []
    if proc.phase is not Phase.RUNNING:
        marks.append(proc.phase.value)
    if proc.stopped:
        marks.append("stopped")
    if proc.quit_requested and proc.phase is Phase.RUNNING:
        marks.append("quit-pending")
    if proc.terminate_requested:
        marks.append("term-pending")
    if proc.shutdown is not Shutdown.NONE:
        marks.append(f"shutdown={proc.shutdown.value}")
    if state.is_orphan(proc):
        marks.append("orphan")
    if proc.is_worker:
        marks.append(f"g{proc.generation}s{proc.slot}")
    return f"{_process_name(state, proc.pid)}{{{fds}}}" + "".join(f"·{m}" for m in marks)


def describe_listener(lst: Listener) -> str:
    """e.g. ``sock0 q=[conn0,conn1]`` or ``sock1 closed``."""
    if not lst.listening:
        return f"sock{lst.sid} closed"
    queue = ",".join(f"conn{cid}" for cid in lst.queue)
    return f"sock{lst.sid} q=[{queue}]"


def describe_connection(conn: Connection) -> str:
    """e.g. ``conn0 accepted@3`` or ``conn1 aborted``."""
    if conn.fate is Fate.ACCEPTED:
        return f"conn{conn.cid} accepted@{conn.owner}" + ("+req" if conn.requested else "")
    if conn.fate in (Fate.QUEUED, Fate.DEFERRED) and conn.requested:
        return f"conn{conn.cid} {conn.fate.value}+req"
    return f"conn{conn.cid} {conn.fate.value}"


def _process_name(state: System, pid: int) -> str:
    proc = state.process(pid)
    if proc is None:
        return f"gone{pid}"
    return f"{proc.role.value}{pid}"
