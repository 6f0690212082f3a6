"""Draw the docs' pictures of what is shared, from live servers: ``make pictures``.

For each server below it starts the real thing on a free port of 127.0.0.1, in its own process
group, waits (bounded) until its workers are idle, reads the kernel objects from /proc
(:func:`forkshare.conformance.observe.kernel_objects.kernel_objects`, the picture of
``forkshare inspect --svg``), kills the group and writes two SVGs into ``docs/_static/pictures/``:
``NAME.svg`` in English and ``NAME.ja.svg`` in Japanese, which the Japanese build picks up by
itself (Sphinx's ``figure_language_filename``, ``{root}.{language}{ext}``).

* ``reference-exclusive``: ``forkshare serve --mode exclusive --workers 3``;
* ``reference-reuseport``: ``--mode reuseport --workers 2``;
* ``reference-passfd``: ``--mode passfd --workers 2``;
* ``nginx``: the Debian nginx with 2 workers, configured as the verifier configures it.

Run from the repository's root after ``make install`` (graphviz's ``dot`` and nginx-light must be
installed; as root or any user — the socket options need ptrace permission over the servers,
which their parent has)::

    .venv/bin/python docs/pictures/make_pictures.py [--only NAME] [--out DIR]

Pids, inodes and ports differ on every run; nothing else should.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from forkshare.conformance.observe.command import draw_svg
from forkshare.conformance.observe.kernel_objects import KernelObjects, kernel_objects
from forkshare.conformance.observe.kernel_picture import ENGLISH, JAPANESE, to_dot
from forkshare.conformance.observe.launch import free_port, launch
from forkshare.errors import ForkshareError

OUT = Path(__file__).resolve().parent.parent / "_static" / "pictures"
START_TIMEOUT = 15.0
"""Seconds a server has to listen, then for its workers to be idle."""

Argv = Callable[[int, Path], list[str]]
"""(port, scratch directory) → the server's command line."""


@dataclass(frozen=True, slots=True)
class Picture:
    """One picture: its file name, the server's title in both languages, how to start it."""

    name: str
    title: tuple[str, str]
    workers: int
    argv: Argv


def _serve(mode: str, workers: int) -> Argv:
    def argv(port: int, directory: Path) -> list[str]:
        listen = f"127.0.0.1:{port}"
        options = ["--mode", mode, "--workers", str(workers), "--listen", listen]
        return [sys.executable, "-m", "forkshare", "serve", *options]

    return argv


def _nginx(port: int, directory: Path) -> list[str]:
    """nginx's command line as the verifier writes its nginx.conf (bundled target ``nginx``:
    accept_mutex off, 2 workers, every file inside ``directory``).

    The one use of the verifier's internals, imported here so that a change there can break
    only the nginx picture.
    """
    from forkshare.conformance.verify.profile import load_bundled
    from forkshare.conformance.verify.target import command_line

    return command_line(load_bundled("nginx"), port, 2, directory)


PICTURES = (
    Picture(
        "reference-exclusive",
        (
            "forkshare serve --mode exclusive --workers 3",
            "forkshare serve --mode exclusive --workers 3 (リファレンスサーバ)",
        ),
        3,
        _serve("exclusive", 3),
    ),
    Picture(
        "reference-reuseport",
        (
            "forkshare serve --mode reuseport --workers 2",
            "forkshare serve --mode reuseport --workers 2 (リファレンスサーバ)",
        ),
        2,
        _serve("reuseport", 2),
    ),
    Picture(
        "reference-passfd",
        (
            "forkshare serve --mode passfd --workers 2",
            "forkshare serve --mode passfd --workers 2 (リファレンスサーバ)",
        ),
        2,
        _serve("passfd", 2),
    ),
    Picture(
        "nginx",
        (
            "nginx, worker_processes 2, accept_mutex off",
            "nginx、worker_processes 2、accept_mutex off",
        ),
        2,
        _nginx,
    ),
)


def observe(picture: Picture) -> KernelObjects:
    """Start the picture's server, read its kernel objects once its workers idle, kill it."""
    with tempfile.TemporaryDirectory(prefix="forkshare-picture-") as scratch:
        port = free_port()
        argv = picture.argv(port, Path(scratch))
        target = launch(argv, port, timeout=START_TIMEOUT, output_dir=scratch)
        try:
            snap = target.wait_for_workers(picture.workers, timeout=START_TIMEOUT)
            return kernel_objects(snap)
        finally:
            target.group.stop(grace=2.0)


def draw(picture: Picture, out: Path) -> list[Path]:
    """Write ``NAME.svg`` and ``NAME.ja.svg`` into ``out``; returns their paths."""
    objects = observe(picture)
    written = []
    for suffix, words, title in (
        (".svg", ENGLISH, picture.title[0]),
        (".ja.svg", JAPANESE, picture.title[1]),
    ):
        path = out / f"{picture.name}{suffix}"
        draw_svg(to_dot(objects, words, title=title), path)
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    """Draw every picture (or ``--only`` one); returns 0, or the error's exit status (3: a
    server did not start, with its stderr)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=[p.name for p in PICTURES], help="draw only this one")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write ({OUT})")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        for picture in PICTURES:
            if args.only in (None, picture.name):
                for path in draw(picture, args.out):
                    print(path)
    except ForkshareError as error:
        print(f"make_pictures: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
