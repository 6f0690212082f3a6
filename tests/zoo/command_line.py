"""The zoo's common command line: ``--port P --workers N`` (nothing else is configurable).

Every zoo server listens on 127.0.0.1 only. This module is the one piece the servers share with
their argument parsing; how each one shares its listening socket is its own.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Arguments:
    """Where to listen and how many workers to run."""

    port: int
    workers: int


def parse_arguments(description: str, argv: Sequence[str] | None = None) -> Arguments:
    """Parse ``--port P --workers N``; argparse exits 2 on a usage error."""
    parser = argparse.ArgumentParser(description=description.strip().splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    parser.add_argument("--workers", type=int, default=2, help="number of worker processes")
    namespace = parser.parse_args(argv)
    if namespace.workers < 1:
        parser.error("--workers must be at least 1")
    return Arguments(port=namespace.port, workers=namespace.workers)
