"""The picture of what is shared, drawn from :class:`KernelObjects`: as text lines and as DOT.

Both drawings read left to right, or top to bottom, the same four steps: each process's
descriptor (its number, FD_CLOEXEC, its epoll registrations) → the open file description (its
reference count and status flags) → the socket (state, address, options) → the accept queue
(waiting, maximum). Their first line counts each kind of object: "4 descriptors → 1 open file
description → 1 socket → 1 accept queue" is a shared socket, whatever the server.

The words are a parameter (:class:`PictureWords`): :data:`ENGLISH` for ``forkshare inspect``,
:data:`JAPANESE` for ``forkshare demo --lang ja`` and the Japanese pages of the docs.

Discussion:
    *Text lines, not a rich Tree.* A tree hangs children off one root, which is the picture the
    docs warn against ("workers hanging off the master's socket"). Here many descriptors join
    into one object; the lines draw that with a bracket, padded by display width (``cell_len``)
    so the Japanese labels line up too.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len

from forkshare.conformance.observe.kernel_objects import (
    AcceptQueue,
    Descriptor,
    KernelObjects,
    OpenFileDescription,
    SocketNode,
)
from forkshare.conformance.observe.procfs import EPOLLEXCLUSIVE, O_NONBLOCK
from forkshare.conformance.observe.rendering import epoll_event_names
from forkshare.conformance.observe.role import Role


@dataclass(frozen=True, slots=True)
class PictureWords:
    """Every word of the picture in one language; ``{…}`` fields are filled in by the drawing."""

    count: str
    """How a count reads: ``{n}`` and ``{noun}``."""
    descriptor: tuple[str, str]
    """Singular and plural."""
    description: tuple[str, str]
    socket: tuple[str, str]
    queue: tuple[str, str]
    roles: tuple[tuple[Role, str], ...]
    description_title: str
    """``{key}``."""
    reference_count: str
    """``{count}``."""
    compared: str
    """How the sharing was established when ``kcmp`` compared the descriptors."""
    inferred: str
    """… and when it was refused (module Discussion of kernel_objects)."""
    queue_state: str
    """``{length}`` and ``{max}``."""
    on: str
    off: str
    unknown: str
    seconds: str
    """A TCP_DEFER_ACCEPT value: ``{n}``."""
    unknown_options: str
    """``{reason}``."""
    holds_none: str
    """``{processes}`` that hold no descriptor on a listening socket."""
    font: str
    """The graphviz font (its metrics size the boxes)."""

    def counted(self, n: int, noun: tuple[str, str]) -> str:
        """``4 descriptors`` / ``ディスクリプタ 4 個``."""
        return self.count.format(n=n, noun=noun[0] if n == 1 else noun[1])

    def role(self, role: Role) -> str:
        """The role's name in this language."""
        return dict(self.roles).get(role, str(role))


ENGLISH = PictureWords(
    count="{n} {noun}",
    descriptor=("descriptor", "descriptors"),
    description=("open file description", "open file descriptions"),
    socket=("socket", "sockets"),
    queue=("accept queue", "accept queues"),
    roles=((Role.MASTER, "master"), (Role.WORKER, "worker"), (Role.ORPHAN, "orphan")),
    description_title="open file description #{key}",
    reference_count="reference count {count}",
    compared="(kcmp: one object)",
    inferred="(one per socket; kcmp not permitted)",
    queue_state="{length} waiting (max {max})",
    on="on",
    off="off",
    unknown="unknown",
    seconds="{n} s",
    unknown_options="options unknown: {reason}",
    holds_none="{processes}: no descriptor on a listening socket",
    font="Helvetica",
)
"""The picture in English."""

JAPANESE = PictureWords(
    count="{noun} {n} 個",
    descriptor=("ディスクリプタ", "ディスクリプタ"),
    description=("オープンファイル記述", "オープンファイル記述"),
    socket=("ソケット", "ソケット"),
    queue=("accept キュー", "accept キュー"),
    roles=((Role.MASTER, "マスター"), (Role.WORKER, "ワーカー"), (Role.ORPHAN, "孤児")),
    description_title="オープンファイル記述 #{key}",
    reference_count="参照カウント {count}",
    compared="(kcmp で同一と確認)",
    inferred="(ソケットごとに一つ。kcmp は許可されず)",
    queue_state="待ち {length} 件 (最大 {max})",
    on="有効",
    off="無効",
    unknown="不明",
    seconds="{n} 秒",
    unknown_options="オプション不明: {reason}",
    holds_none="{processes}: リスニングソケットのディスクリプタを持たない",
    font="Noto Sans CJK JP",
)
"""The picture in Japanese (である調, the docs' terms: オープンファイル記述, accept キュー)."""


def summary(objects: KernelObjects, words: PictureWords = ENGLISH) -> str:
    """``4 descriptors → 1 open file description → 1 socket → 1 accept queue``."""
    return " → ".join(
        (
            words.counted(len(objects.descriptors), words.descriptor),
            words.counted(len(objects.descriptions), words.description),
            words.counted(len(objects.sockets), words.socket),
            words.counted(len(objects.queues), words.queue),
        )
    )


def status_flag_names(flags: int) -> str:
    """``O_RDWR|O_NONBLOCK`` for 0o4002; bits without a name here are kept as octal."""
    access = ("O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE")[flags & 0o3]
    names = [access] + (["O_NONBLOCK"] if flags & O_NONBLOCK else [])
    rest = flags & ~(0o3 | O_NONBLOCK)
    return "|".join(names + ([oct(rest)] if rest else []))


# ---------------------------------------------------------------- text


def render_lines(objects: KernelObjects, words: PictureWords = ENGLISH) -> list[str]:
    """The picture as plain text lines: the summary, then one block per open file description."""
    lines = [summary(objects, words)]
    for socket in objects.sockets:
        for description in objects.descriptions_of(socket.inode):
            lines.append("")
            lines += _description_block(objects, description, socket, words)
    idle = [p for p in objects.processes if not any(d.pid == p.pid for d in objects.descriptors)]
    if idle:
        names = ", ".join(f"{words.role(p.role)} {p.pid}" for p in idle)
        lines += ["", words.holds_none.format(processes=names)]
    return lines


def _description_block(
    objects: KernelObjects,
    description: OpenFileDescription,
    socket: SocketNode,
    words: PictureWords,
) -> list[str]:
    holders = [_holder_text(objects, d, words) for d in objects.descriptors_of(description.key)]
    width = max(cell_len(text) for text in holders) + 1
    lines = [
        text + " " + "─" * (width - cell_len(text)) + _bracket(index, len(holders))
        for index, text in enumerate(holders)
    ]
    return [
        *lines,
        "  ▼",
        _description_text(description, words),
        "  ▼",
        _socket_text(socket, words),
        "  ▼",
        _queue_text(objects.queue_of(socket.inode), words),
    ]


def _bracket(index: int, count: int) -> str:
    if count == 1:
        return "─"
    return "┐" if index == 0 else "┘" if index == count - 1 else "┤"


def _holder_text(objects: KernelObjects, descriptor: Descriptor, words: PictureWords) -> str:
    process = objects.process(descriptor.pid)
    parts = [f"{words.role(process.role)} {process.pid}", f"fd {descriptor.fd}"]
    if descriptor.cloexec:
        parts.append("FD_CLOEXEC")
    parts += [f"epoll {epoll_event_names(e, brief=True)}" for e in descriptor.epoll_events]
    return "  ".join(parts)


def _description_text(description: OpenFileDescription, words: PictureWords) -> str:
    title, count, flags = _description_parts(description, words)
    return f"{title}: {count} · {flags}"


def _description_parts(description: OpenFileDescription, words: PictureWords) -> list[str]:
    """Its title, its reference count (and how the sharing was established), its flags."""
    how = words.compared if description.compared else words.inferred
    return [
        words.description_title.format(key=description.key),
        words.reference_count.format(count=description.reference_count) + " " + how,
        status_flag_names(description.status_flags),
    ]


def _socket_text(socket: SocketNode, words: PictureWords) -> str:
    head = f"socket:[{socket.inode}]  {socket.state} {socket.address}"
    return f"{head} · " + " · ".join(_option_texts(socket, words))


def _option_texts(socket: SocketNode, words: PictureWords) -> list[str]:
    if socket.unknown_because is not None:
        return [words.unknown_options.format(reason=socket.unknown_because)]
    return [
        f"SO_REUSEADDR {_switch(socket.reuseaddr, words)}",
        f"SO_REUSEPORT {_switch(socket.reuseport, words)}",
        f"TCP_DEFER_ACCEPT {_seconds(socket.defer_accept, words)}",
    ]


def _seconds(value: int | None, words: PictureWords) -> str:
    if value is None:
        return words.unknown
    return words.off if value == 0 else words.seconds.format(n=value)


def _switch(value: bool | None, words: PictureWords) -> str:
    return words.unknown if value is None else words.on if value else words.off


def _queue_text(queue: AcceptQueue, words: PictureWords) -> str:
    return f"{words.queue[0]}: {_queue_state(queue, words)}"


def _queue_state(queue: AcceptQueue, words: PictureWords) -> str:
    maximum = words.unknown if queue.max_backlog is None else str(queue.max_backlog)
    return words.queue_state.format(length=queue.length, max=maximum)


# ---------------------------------------------------------------- graphviz


def to_dot(objects: KernelObjects, words: PictureWords = ENGLISH, title: str = "") -> str:
    """A graphviz digraph, left to right: processes, descriptor edges (fd number, FD_CLOEXEC,
    epoll registrations; bold red when EPOLLEXCLUSIVE), open file descriptions, sockets, queues.
    ``title`` goes above the summary line."""
    heading = "\\n".join(_escape(t) for t in (title, summary(objects, words)) if t)
    lines = [
        "digraph kernel_objects {",
        "  rankdir=LR; nodesep=0.2; ranksep=0.45;",
        f'  label="{heading}"; labelloc=t; fontname="{words.font}"; fontsize=13;',
        f'  node [fontname="{words.font}", fontsize=11, shape=box, style="rounded,filled",'
        ' fillcolor="#ffffff"];',
        f'  edge [fontname="{words.font}", fontsize=10];',
    ]
    lines += [_process_node(objects, p.pid, words) for p in objects.processes]
    lines += [_descriptor_edge(d) for d in objects.descriptors]
    lines += [_description_node(d, words) for d in objects.descriptions]
    for socket in objects.sockets:
        lines.append(_socket_node(socket, words))
        lines.append(_queue_node(objects.queue_of(socket.inode), words))
        lines += [
            f"  ofd{d.key} -> s{socket.inode};" for d in objects.descriptions_of(socket.inode)
        ]
        lines.append(f"  s{socket.inode} -> q{socket.inode};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _process_node(objects: KernelObjects, pid: int, words: PictureWords) -> str:
    process = objects.process(pid)
    label = f"{words.role(process.role)} {pid}\\n{_escape(process.name)}"
    if not any(d.pid == pid for d in objects.descriptors):
        return f'  p{pid} [label="{label}", color="#999999", fontcolor="#666666"];'
    return f'  p{pid} [label="{label}", fillcolor="#f2f2f2"];'


def _descriptor_edge(descriptor: Descriptor) -> str:
    parts = [f"fd {descriptor.fd}"] + (["FD_CLOEXEC"] if descriptor.cloexec else [])
    parts += [f"epoll {epoll_event_names(e, brief=True)}" for e in descriptor.epoll_events]
    exclusive = any(e & EPOLLEXCLUSIVE for e in descriptor.epoll_events)
    style = ', color="#c0392b", penwidth=2' if exclusive else ""
    label = "\\n".join(parts)
    return f'  p{descriptor.pid} -> ofd{descriptor.description} [label="{label}"{style}];'


def _description_node(description: OpenFileDescription, words: PictureWords) -> str:
    label = "\\n".join(_escape(line) for line in _description_parts(description, words))
    return f'  ofd{description.key} [label="{label}", fillcolor="#fff4cc"];'


def _socket_node(socket: SocketNode, words: PictureWords) -> str:
    lines = [f"socket:[{socket.inode}]", f"{socket.state} {socket.address}"]
    lines += _option_texts(socket, words)
    label = "\\n".join(_escape(line) for line in lines)
    return f'  s{socket.inode} [label="{label}", fillcolor="#dde8fb"];'


def _queue_node(queue: AcceptQueue, words: PictureWords) -> str:
    label = "\\n".join(_escape(line) for line in (words.queue[0], _queue_state(queue, words)))
    return f'  q{queue.socket} [label="{label}", fillcolor="#dff3e0"];'


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
