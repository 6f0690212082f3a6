"""The tour's formal parts: an unsafe design's counterexample, the proof summary, a short verify.

* :func:`counterexample` explores one unsafe variant of the model in-process
  (:func:`forkshare.model.explorer.explore`) and :func:`show_counterexample` prints its shortest
  trace with :mod:`forkshare.model.trace_text`.
* :func:`prove` and :func:`verify` run ``forkshare prove --json`` and ``forkshare verify --json``
  as child commands, bounded in time and stopped with everything they started
  (:func:`forkshare.json_command.run_json_command`), and read only their JSON.

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

import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from forkshare.json_command import CommandResult, run_json_command
from forkshare.model.config import Config
from forkshare.model.explorer import Exploration, Violation, explore
from forkshare.model.trace_text import describe_state
from forkshare.model.variants import VARIANTS, Variant
from forkshare.prose import Prose
from forkshare.tour_text import TourText

VARIANT = "private-reuseport"
"""The unsafe design the tour shows: reuseport sockets created by the workers (gunicorn)."""


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


def prove(timeout: float) -> CommandResult:
    """Run the whole proof suite through its command line."""
    return run_json_command(_forkshare("prove", "--json"), timeout)


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
        reason = _reason(text, result) or "no records"
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
    server in ``mode``, its profile taken as it is (no discovery, no generated scenarios) and
    three short random walks, about 6 s here."""
    target = f"forkshare-{mode}"
    budget = ["--no-discover", "--no-scenarios", "--examples", "3", "--steps", "8"]
    return _forkshare("verify", "--target", target, *budget, "--json")


def verify(mode: str, timeout: float) -> CommandResult:
    """Run the short verify through its command line."""
    return run_json_command(verify_argv(mode), timeout)


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
        reason = _reason(text, result) or "no verdict"
        console.print(Prose(text.verify_did_not_run.format(reason=reason), style="yellow"))
        return
    line, conforms = summary
    console.print(Prose(line, style="bold green" if conforms else "bold red"))


def _reason(text: TourText, result: CommandResult) -> str:
    """Why a command gave no document, in the tour's language when it ran out of time."""
    if result.timed_out is not None:
        return text.timed_out.format(seconds=f"{result.timed_out:g}")
    return result.reason
