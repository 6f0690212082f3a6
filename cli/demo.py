"""``forkshare demo``: a guided tour that answers, live, "how do the workers share the master's
listening socket, and with which system calls?" (what ``make demo`` runs).

Six parts, each introduced by a sentence or two saying what it shows:

1. the reference server (``forkshare serve --workers 3 --mode exclusive``) runs under strace, and
   its socket calls are shown by role: the master's socket, setsockopt, bind, listen and clone;
   each worker's epoll_create1 and epoll_ctl (:mod:`forkshare.tour_server`);
2. the picture of what is shared, from /proc: descriptors → one open file description → one
   socket → one accept queue (:mod:`forkshare.conformance.observe.kernel_objects`);
3. a few clients connect; who accepted each (/proc, the server's reply, the trace's accept4);
4. the model: an unsafe design's shortest counterexample (:mod:`forkshare.tour_model`);
5. the proof suite's summary (``forkshare prove --json``);
6. a short verify of the same server (``forkshare verify --json``).

Every sentence comes from :mod:`forkshare.tour_text`, in English or Japanese (``--lang``, or the
locale: ``LANG=ja_JP.UTF-8``). Every wait is bounded; every process the tour starts runs in its own
process group and is killed at the end, also on Ctrl-C.

Exit status: 0 the tour ran to its end (each part prints its own verdict; a proof suite or
verifier that gave no result is a note, not a failure of the tour); 1 the live server could not
be observed (3 when it did not start, with its stderr); 2 usage error; 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from forkshare import tour_model, tour_server
from forkshare.conformance.observe.kernel_objects import KernelObjects, kernel_objects
from forkshare.conformance.observe.observer import snapshot
from forkshare.impl.options import MODES
from forkshare.prose import Prose
from forkshare.tour_text import LANGUAGES, TEXTS, TourText, choose_language

PROVE_TIMEOUT = 30.0
"""Seconds the proof suite may take before the tour moves on without it."""
VERIFY_TIMEOUT = 20.0
"""Seconds the short verify may take (it needs about 6 s here)."""
PARTS = 6


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``forkshare demo``."""
    parser = argparse.ArgumentParser(
        prog="forkshare demo",
        description="A guided tour, in under a minute, of how a prefork server's workers share "
        "the master's listening socket: the reference server's system calls by role (strace), "
        "the kernel objects it shares (descriptors, one open file description, one socket, one "
        "accept queue, read from /proc), who accepts each connection, then an unsafe design's "
        "counterexample from the model, the proof summary and a short verify of the server.",
        epilog="The language follows LC_ALL, LC_MESSAGES or LANG (ja_JP.UTF-8 gives Japanese) "
        "unless --lang says otherwise. Without strace, part 1 is skipped with a note.",
    )
    parser.add_argument(
        "--lang", choices=LANGUAGES, help="en or ja (default: from the locale, else en)"
    )
    parser.add_argument(
        "--workers", type=_workers, default=3, metavar="N", help="the server's workers (3)"
    )
    parser.add_argument(
        "--mode", choices=MODES, default="exclusive", help="how the workers share (exclusive)"
    )
    parser.add_argument(
        "--connections", type=_workers, default=4, metavar="N", help="clients in part 3 (4)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="skip the proof suite and the verifier (parts 5, 6)"
    )
    parser.add_argument("--no-verify", action="store_true", help="skip the verifier (part 6)")
    return parser


def _workers(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 16:
        raise argparse.ArgumentTypeError(f"{text} is not between 1 and 16")
    return value


def main(argv: Sequence[str]) -> int:
    """Run the tour; returns the exit status (module docstring)."""
    args = build_parser().parse_args(list(argv))
    text = TEXTS[choose_language(args.lang, os.environ)]
    tour = Tour(_console(), Console(stderr=True), text, args)
    return tour.run()


def _console() -> Console:
    """The terminal's width; when piped (make demo | tee, tests), a fixed 110 columns."""
    return Console(highlight=False) if sys.stdout.isatty() else Console(width=110, highlight=False)


@dataclass(frozen=True, slots=True)
class Tour:
    """One run of the tour: where it prints, in which language, with which options."""

    console: Console
    progress: Console
    text: TourText
    args: argparse.Namespace

    def run(self) -> int:
        """Print every part in order; returns 0 (failures to start the server raise)."""
        started = time.monotonic()
        self._opening()
        self._live_parts()
        self._model_parts()
        self._closing(time.monotonic() - started)
        return 0

    # ------------------------------------------------------------ the live server (1–3)

    def _live_parts(self) -> None:
        strace = tour_server.find_strace()
        with contextlib.ExitStack() as stack:
            with self._working(1):
                live = tour_server.live_server(self.args.mode, self.args.workers, strace.path)
                server = stack.enter_context(live)
                tour_server.wait_until_idle(server, self.args.workers)
            self._part_1(server, strace)
            objects = self._part_2(server)
            self._part_3(server, objects)

    def _part_1(self, server: tour_server.LiveServer, strace: tour_server.Strace) -> None:
        self._heading(1, self.text.trace_intro)
        analysis = server.analysis()
        if analysis is None:
            note = (
                self.text.strace_unusable.format(reason=strace.why_not)
                if strace.why_not
                else self.text.strace_missing
            )
            self.console.print(Prose(note, style="yellow"))
            return
        tour_server.show_trace(self.console, self.text, analysis)

    def _part_2(self, server: tour_server.LiveServer) -> KernelObjects:
        self._heading(2, self.text.picture_intro)
        with self._working(2):
            objects = kernel_objects(snapshot(port=server.port))
        tour_server.show_picture(self.console, self.text, objects)
        return objects

    def _part_3(self, server: tour_server.LiveServer, objects: KernelObjects) -> None:
        count = self.args.connections
        self._heading(3, self.text.connections_intro.format(count=count))
        with self._working(3):
            acceptances = [tour_server.accept_one(server.port, n) for n in range(1, count + 1)]
            if server.traced is not None:
                server.traced.wait_accepts(sum(a.acceptor is not None for a in acceptances))
        analysis = server.analysis()
        tour_server.show_acceptances(self.console, self.text, acceptances, objects, analysis)

    # ------------------------------------------------------------ model, proofs, verifier (4–6)

    def _model_parts(self) -> None:
        variant = tour_model.unsafe_variant()
        self._heading(
            4, self.text.model_intro.format(variant=variant.name, seen_in=variant.seen_in)
        )
        with self._working(4):
            result = tour_model.counterexample(variant)
        tour_model.show_counterexample(self.console, self.text, variant, result)
        self._heading(5, self.text.proofs_intro)
        if self.args.quick:
            self.console.print(Prose(self.text.skipped.format(option="--quick"), style="dim"))
        else:
            with self._working(5):
                proofs = tour_model.prove(PROVE_TIMEOUT)
            tour_model.show_proofs(self.console, self.text, proofs)
        self._heading(6, self.text.verify_intro.format(target=f"forkshare-{self.args.mode}"))
        if self.args.quick or self.args.no_verify:
            option = "--quick" if self.args.quick else "--no-verify"
            self.console.print(Prose(self.text.skipped.format(option=option), style="dim"))
        else:
            with self._working(6):
                verdict = tour_model.verify(self.args.mode, VERIFY_TIMEOUT)
            tour_model.show_verify(self.console, self.text, verdict)

    # ------------------------------------------------------------ layout

    def _opening(self) -> None:
        body = Group(Prose(self.text.question, "bold"), Text(""), Prose(self.text.plan))
        self.console.print(Panel(body, title=self.text.title, title_align="left"))
        shown = f"forkshare serve --workers {self.args.workers} --mode {self.args.mode}"
        self.console.print(Prose(self.text.server_line.format(command=shown), style="dim"))

    def _heading(self, part: int, intro: str) -> None:
        title = self.text.part_titles[part - 1]
        self.console.print()
        self.console.rule(Text(f"{part}/{PARTS}  {title}", style="bold"), align="left")
        self.console.print(Prose(intro))
        self.console.print()

    def _closing(self, seconds: float) -> None:
        self.console.print()
        answer = Prose(self.text.answer)
        self.console.print(Panel(answer, title=self.text.answer_title, title_align="left"))
        self.console.print(Prose(self.text.elapsed.format(seconds=f"{seconds:.1f}")))
        self.console.print(Prose(self.text.next_steps, style="dim"))

    @contextlib.contextmanager
    def _working(self, part: int) -> Iterator[None]:
        """A progress line on stderr while part ``part`` works (nothing when it is not a
        terminal: the status is transient)."""
        with self.progress.status(self.text.working[part - 1]):
            yield
