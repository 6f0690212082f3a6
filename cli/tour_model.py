"""The tour's formal parts: an unsafe design's counterexample, the proof summary, a short verify.

* :func:`counterexample` explores one unsafe variant of the model in-process
  (:func:`forkshare.model.explorer.explore`) and :func:`show_counterexample` prints its shortest
  trace with :mod:`forkshare.model.trace_text`.
* :func:`prove` and :func:`verify` run ``forkshare prove --json`` and ``forkshare verify --json``
  as child commands in their own process group, bounded in time and killed on Ctrl-C, and read
  only their JSON (:func:`run_json_command`).

Discussion:
    *Why the proofs and the verifier through their command lines.* Both are being rewritten while
    this tour is written (the proofs re-encoded, the verifier's internals and options changing).
    Their ``--json`` documents are what they promise to the outside, so the tour reads those, and
    reads them leniently: a field it cannot find makes that part say "no result", never crash the
    tour. The verifier's command line is confined to :func:`verify_argv`, its JSON to
    :func:`verify_summary`. A command that fails or overruns its time is reported with its reason
    (the last line of its stderr, or the timeout) and the tour goes on.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from forkshare.conformance.observe import procfs
from forkshare.conformance.observe.deadline import wait_until
from forkshare.conformance.observe.errors import WaitTimedOutError
from forkshare.conformance.observe.process_group import ProcessGroup
from forkshare.model.config import Config
from forkshare.model.explorer import Exploration, Violation, explore
from forkshare.model.trace_text import describe_state
from forkshare.model.variants import VARIANTS, Variant
from forkshare.prose import Prose
from forkshare.tour_text import TourText

_PR_SET_CHILD_SUBREAPER = 36  # include/uapi/linux/prctl.h
CHILD_GRACE = 5.0
"""Seconds a child command has to clean up after SIGINT before its group is killed."""
VARIANT = "private-reuseport"
"""The unsafe design the tour shows: reuseport sockets created by the workers (gunicorn)."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A child command's JSON document, or why there is none."""

    document: Mapping[str, Any] | None
    reason: str
    """Empty with a document; else the last line of its stderr, its status or the timeout."""


# ---------------------------------------------------------------- part 4: the model


def unsafe_variant(name: str = VARIANT) -> Variant:
    """The model's unsafe design ``name``."""
    return VARIANTS[name]


def counterexample(variant: Variant) -> Exploration:
    """Explore ``variant`` within its own bounds (as ``explore --all`` does)."""
    return explore(replace(variant.apply(Config()), bounds=variant.bounds))


def show_counterexample(
    console: Console, text: TourText, variant: Variant, result: Exploration
) -> None:
    """The violated property (named, with its claim) and the shortest trace to it."""
    violation = result.violations.get(variant.expected)
    if violation is None:
        console.print(Prose(text.model_no_violation.format(invariant=variant.expected), "red"))
        return
    console.print(Panel(_trace_text(text, violation), expand=False))
    console.print(Prose(text.model_legend, style="dim"))
    console.print(Prose(text.model_explanation, style="bold"))
    seconds = f"{result.seconds:.1f}"
    console.print(Prose(text.model_explored.format(states=f"{result.states:,}", seconds=seconds)))


def _trace_text(text: TourText, violation: Violation) -> Group:
    claim = text.claim(violation.invariant, violation.claim)
    heading = text.model_violates.format(invariant=violation.invariant, claim=claim)
    lines = [
        f"{number:2}. {step.label:<32} {describe_state(step.state)}"
        for number, step in enumerate(violation.trace, start=1)
    ]
    return Group(Prose(heading, "bold"), Text(""), Text("\n".join(lines)))


# ---------------------------------------------------------------- child commands


def run_json_command(argv: Sequence[str], timeout: float, text: TourText) -> CommandResult:
    """Run ``argv`` in its own process group for at most ``timeout`` seconds and parse its
    stdout as one JSON object.

    The command is stopped at the end whatever happened (a timeout, Ctrl-C in the tour) with
    SIGINT first, as Ctrl-C would stop it: the verifier then kills the servers it started in
    their own sessions, which a SIGKILL of its group would leave running; SIGKILL follows after
    :data:`CHILD_GRACE` seconds.
    """
    with (
        tempfile.TemporaryDirectory(prefix="forkshare-demo-") as directory,
        orphans_killed(),
    ):
        group = ProcessGroup(argv, output_dir=directory)
        try:
            finished = _wait_for_exit(group, timeout)
        finally:
            group.stop(first=signal.SIGINT, grace=CHILD_GRACE)
        stdout, stderr = group.stdout(), group.stderr()
    if not finished:
        return CommandResult(None, text.timed_out.format(seconds=f"{timeout:g}"))
    status = group.process.returncode
    try:
        document = json.loads(stdout)
    except ValueError:
        return CommandResult(None, _last_line(stderr) or f"exit status {status}")
    if not isinstance(document, dict):
        return CommandResult(None, f"exit status {status}")
    return CommandResult(document, "")


@contextlib.contextmanager
def orphans_killed() -> Iterator[None]:
    """Be a child subreaper for the block; at its end, kill (by process group) and reap every
    process that was orphaned to us in it.

    A child command may leave processes of its own behind when it is stopped: the verifier
    starts each target in a new session, and a target whose verifier died is reparented. As a
    subreaper (``PR_SET_CHILD_SUBREAPER``) the tour inherits them instead of init, so it can tell
    them from anybody else's processes and kill them.
    """
    before = set(procfs.read_children(os.getpid()))
    _set_subreaper(True)
    try:
        yield
    finally:
        adopted = set(procfs.read_children(os.getpid())) - before
        for pid in adopted:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
        _reap(adopted, before)
        _set_subreaper(False)


def _reap(adopted: set[int], before: set[int]) -> None:
    """Reap the adopted processes and, as they die, their orphaned children (bounded)."""
    deadline = time.monotonic() + CHILD_GRACE
    while adopted and time.monotonic() < deadline:
        for pid in list(adopted):
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue
            adopted.discard(pid)
        adopted |= set(procfs.read_children(os.getpid())) - before
        time.sleep(0.02)


def _set_subreaper(on: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)


def _wait_for_exit(group: ProcessGroup, timeout: float) -> bool:
    try:
        wait_until(lambda: not group.is_running(), timeout, " ".join(group.argv), interval=0.1)
    except WaitTimedOutError:
        return False
    return True


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""


def _forkshare(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "forkshare", *arguments]


# ---------------------------------------------------------------- part 5: the proofs


@dataclass(frozen=True, slots=True)
class ProofSummary:
    """What ``forkshare prove --json`` says, counted."""

    proved: int
    obligations: int
    refuted: int
    variants: int
    seconds: float
    not_proved: tuple[str, ...]


def prove(timeout: float, text: TourText) -> CommandResult:
    """Run the whole proof suite through its command line."""
    return run_json_command(_forkshare("prove", "--json"), timeout, text)


def proof_summary(document: Mapping[str, Any]) -> ProofSummary | None:
    """Count the init and consecution obligations proved and the refutations found; None when
    the document has no records (its shape changed)."""
    records = [r for r in document.get("records", ()) if isinstance(r, dict)]
    if not records:
        return None
    obligations = [r for r in records if r.get("kind") in ("init", "consecution")]
    refutations = [r for r in records if r.get("kind") == "refutation"]
    failing = {str(r.get("invariant")) for r in obligations if r.get("result") in _NOT_PROVED}
    return ProofSummary(
        proved=sum(r.get("result") == "proved" for r in obligations),
        obligations=len(obligations),
        refuted=sum(r.get("result") == "found" for r in refutations),
        variants=len(refutations),
        seconds=float(document.get("wall_seconds", 0.0)),
        not_proved=tuple(sorted(failing)),
    )


_NOT_PROVED = ("failed", "unknown")


def show_proofs(console: Console, text: TourText, result: CommandResult) -> None:
    """The summary line, or the reason there is none."""
    summary = proof_summary(result.document) if result.document is not None else None
    if summary is None:
        reason = result.reason or "no records"
        console.print(Prose(text.proofs_did_not_run.format(reason=reason), style="yellow"))
        return
    line = text.proofs_summary.format(
        proved=summary.proved,
        obligations=summary.obligations,
        refuted=summary.refuted,
        variants=summary.variants,
        seconds=f"{summary.seconds:.1f}",
    )
    console.print(Prose(line, style="bold"))
    if summary.not_proved:
        names = ", ".join(summary.not_proved)
        line = text.proofs_not_proved.format(count=len(summary.not_proved), names=names)
        console.print(Prose(line, style="yellow"))


# ---------------------------------------------------------------- part 6: the verifier


def verify_argv(mode: str) -> list[str]:
    """The one place that knows the verifier's options: the bundled target of the reference
    server in ``mode``, with a budget small enough for the tour (a few seconds)."""
    target = f"forkshare-{mode}"
    return _forkshare("verify", "--target", target, "--examples", "3", "--steps", "8", "--json")


def verify(mode: str, timeout: float, text: TourText) -> CommandResult:
    """Run the short verify through its command line."""
    return run_json_command(verify_argv(mode), timeout, text)


def verify_summary(document: Mapping[str, Any], text: TourText) -> tuple[str, bool] | None:
    """The verifier's verdict as (the line to print, it conforms), from its JSON; None when the
    document has no verdict (its shape changed)."""
    verdict = document.get("verdict")
    if not isinstance(verdict, str):
        return None
    if verdict != "conforms":
        violation = document.get("violation")
        named = violation.get("property") if isinstance(violation, dict) else None
        return text.verify_violation.format(property=named or verdict), False
    properties = document.get("properties", {})
    checked = sum(v == "holds" for v in properties.values()) if isinstance(properties, dict) else 0
    line = text.verify_summary.format(
        steps=document.get("steps", "?"),
        seconds=f"{float(document.get('seconds', 0.0)):.1f}",
        properties=checked,
    )
    return line, True


def show_verify(console: Console, text: TourText, result: CommandResult) -> None:
    """The verdict line, or the reason there is none."""
    summary = verify_summary(result.document, text) if result.document is not None else None
    if summary is None:
        reason = result.reason or "no verdict"
        console.print(Prose(text.verify_did_not_run.format(reason=reason), style="yellow"))
        return
    line, conforms = summary
    console.print(Prose(line, style="bold green" if conforms else "bold red"))
