"""The verifier's machine-facing interfaces: ``--json``, a saved violation replayed with
``--replay``, and :func:`run_conformance` called from a third party's pytest.

The violation is provoked on purpose: the reference server in passfd mode (only the master holds
the listening socket) is claimed to be an ``exclusive`` server (every worker holds it), which the
first observation after start contradicts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import settings

from forkshare.cli import main as forkshare
from forkshare.conformance.verify.machine import NonconformanceError
from forkshare.conformance.verify.profile import load_bundled
from forkshare.conformance.verify.verify import run_conformance

pytestmark = pytest.mark.process

MISCLAIMED = [
    "--command",
    "{forkshare} serve --listen 127.0.0.1:{port} --workers {workers} --mode passfd "
    "--log-level warning",
    "--mode",
    "exclusive",
    "--reload-signal",
    "HUP",
    "--graceful-signal",
    "QUIT",
    "--fast-signal",
    "TERM",
    "--worker-connections",
    "1",
    "--parent-death",
    "workers-exit",
    "--examples",
    "2",
    "--steps",
    "3",
    "--no-shrink",
]


def test_json_reports_a_conforming_run(capsys: pytest.CaptureFixture[str]) -> None:
    status = forkshare(
        ["verify", "--target", "forkshare-exclusive", "--examples", "1", "--steps", "4", "--json"]
    )
    record = json.loads(capsys.readouterr().out)
    assert status == 0
    assert record["violation"] is None
    assert record["steps"] >= 1
    assert record["properties"]["observation_matches_model"] == "holds"


def test_a_saved_violation_replays_to_the_same_property(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replay = tmp_path / "violation.json"
    status = forkshare(["verify", *MISCLAIMED, "--replay-out", str(replay), "--json"])
    first = json.loads(capsys.readouterr().out)
    assert status == 1
    assert replay.exists()
    again = forkshare(["verify", "--replay", str(replay), "--json"])
    second = json.loads(capsys.readouterr().out)
    assert again == 1
    assert second["violation"]["property"] == first["violation"]["property"]


def test_run_conformance_passes_for_a_conforming_target() -> None:
    run_conformance(
        load_bundled("forkshare-exclusive"),
        settings=settings(max_examples=1, stateful_step_count=4, deadline=None, database=None),
    )


def test_run_conformance_raises_nonconformance_naming_the_property() -> None:
    from dataclasses import replace

    passfd = load_bundled("forkshare-passfd")
    misclaimed = replace(passfd, name="misclaimed", mode="exclusive")
    with pytest.raises(NonconformanceError) as failure:
        run_conformance(
            misclaimed,
            settings=settings(max_examples=2, stateful_step_count=3, deadline=None, database=None),
        )
    assert failure.value.prop
