"""The ``--trace`` file: model-level events as JSON lines, for trace validation in the verifier.

Format (the verifier depends on these names; more fields may be added, none renamed): one JSON
object per line, ``{"ts": <time.monotonic()>, "pid": <int>, "event": <name>, ...}``. Every process
appends to the same file through a descriptor opened once by the master with ``O_APPEND`` and
inherited by the workers; each event is one ``write()``, so lines from different processes never
interleave (O_APPEND positions and writes atomically for regular files).

Events and their fields:

======================  ============================================================================
``listen``              fd, inode, address ("127.0.0.1:8080"), reuseport (bool), slot (int or null)
``inherit``             fd, inode, address, reuseport, slot: sockets from systemd / a previous
                        master
``fork``                child, role ("worker" or "master"), slot, generation
``exec``                (the new master after an upgrade; its first event)
``accept``              inode, peer ("127.0.0.1:PORT"), fd
``pass``                to (worker pid), peer: passfd, master side
``receive``             peer: passfd, worker side
``respond``             peer, status
``mutex_acquire``       (the accept mutex was taken by this pid)
``mutex_release``       (released by its holder)
``mutex_force_unlock``  holder: the master freed the mutex of a reaped holder
``signal``              signal ("HUP", "QUIT"...): a signal the process acted on
``close_listener``      inode: this process closed its descriptor of a listening socket
``reap``                child, status (exit code or null), signal (or null), respawn (bool)
``exit``                status
======================  ============================================================================
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from forkshare.impl.errors import SyscallError


class Trace:
    """Writes trace events, or does nothing when no ``--trace`` file was given."""

    __slots__ = ("_fd",)

    def __init__(self, fd: int | None = None) -> None:
        self._fd = fd

    @classmethod
    def open(cls, path: Path | None) -> Trace:
        """Open ``path`` for appending (close-on-exec), or return a disabled trace for None.

        Raises:
            SyscallError: the file cannot be opened.
        """
        if path is None:
            return cls(None)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            return cls(os.open(path, flags, 0o644))
        except OSError as error:
            raise SyscallError("open", str(path), error, "fix the --trace path") from error

    @property
    def enabled(self) -> bool:
        """Whether events are written; callers test it before building costly fields."""
        return self._fd is not None

    def emit(self, event: str, **fields: object) -> None:
        """Append one event line; a failed write is ignored (tracing never stops the server)."""
        if self._fd is None:
            return
        record = {"ts": time.monotonic(), "pid": os.getpid(), "event": event, **fields}
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with contextlib.suppress(OSError):
            os.write(self._fd, line.encode())

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
