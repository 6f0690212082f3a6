"""The verifier's verdict matrix on the zoo: servers it was not written against.

Each correct server conforms in every one of ``RUNS_OF_CORRECT`` runs (a false alarm in any run
fails); each defective server is caught, and the property named is its defect's (or one its
manifest lists under ``also``: the same defect can break a related property first, depending on
the steps taken). The runs use the verifier's public API with discovery and the scenarios, as
``forkshare verify --command … --reload-signal … --graceful-signal … --fast-signal …`` does.
"""

from __future__ import annotations

import sys
import tomllib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest

from forkshare.conformance.verify.profile import Profile, profile_from_table
from forkshare.conformance.verify.verify import (
    DEFAULT_BOUNDS,
    Plan,
    Result,
    config_for,
    settle_claim,
    verify,
)

ZOO = Path(__file__).parent
MANIFEST: dict[str, dict[str, Any]] = tomllib.loads((ZOO / "manifest.toml").read_text())
RUNS_OF_CORRECT = 5
MATRIX_PLAN = Plan(workers=2, examples=0, shrink=False)
"""Discovery and every scenario (the walks are left to ``tests/measure_zoo.py``): a default run
without its random part, so that the matrix fits in the suite's time."""

pytestmark = [pytest.mark.process, pytest.mark.zoo, pytest.mark.timeout(900)]


def profile_of(name: str) -> Profile:
    """The ad-hoc profile ``--command`` and the signal flags would build for zoo server ``name``."""
    entry = MANIFEST[name]
    command = entry["command"].replace("{dir}", str(ZOO)).replace("{python}", sys.executable)
    return profile_from_table(
        name,
        {
            "kind": "command",
            "command": command,
            "reload_signal": entry["reload_signal"],
            "graceful_signal": entry["graceful_signal"],
            "fast_signal": entry["fast_signal"],
        },
    )


def explain(result: Result) -> str:
    """The verdict with its evidence, for an assertion message."""
    violation = result.violation
    if violation is None:
        return result.verdict
    return (
        f"{result.verdict} ({violation.found_by}): {violation.message}\n"
        f"steps {violation.steps}\nobserved {violation.observed}\nallowed {violation.allowed}\n"
        f"discovered {result.discovered}"
    )


CORRECT = [name for name, entry in MANIFEST.items() if entry["correct"]]
DEFECTIVE = [name for name, entry in MANIFEST.items() if not entry["correct"]]


def _verify(profile: Profile, plan: Plan) -> Result:
    return verify(profile, plan)


def verify_all(jobs: list[tuple[Profile, Plan]]) -> list[Result]:
    """Every job's result, two at a time: each run mostly waits on its server (a third of a
    core), and each has its own port and process group, so two runs do not disturb each other
    on CI's two cores."""
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("fork")) as pool:
        futures = [pool.submit(_verify, profile, plan) for profile, plan in jobs]
        return [future.result(timeout=600) for future in futures]


@pytest.mark.parametrize("name", CORRECT)
def test_each_correct_server_conforms_in_every_run(name: str) -> None:
    first = verify(profile_of(name), MATRIX_PLAN)
    assert first.verdict == "conforms", f"run 1: {explain(first)}"
    assert first.profile is not None
    again = replace(MATRIX_PLAN, discover=False)  # what discovery settled is in the profile
    results = verify_all([(first.profile, again)] * (RUNS_OF_CORRECT - 1))
    for run, result in enumerate(results, 2):
        assert result.verdict == "conforms", f"run {run}: {explain(result)}"


@pytest.fixture(scope="module")
def defective_results() -> dict[str, Result]:
    """Every defective server's verdict, computed two at a time on first use."""
    results = verify_all([(profile_of(name), MATRIX_PLAN) for name in DEFECTIVE])
    return dict(zip(DEFECTIVE, results, strict=True))


@pytest.mark.parametrize("name", DEFECTIVE)
def test_each_defective_server_is_caught_under_its_property(
    name: str, defective_results: dict[str, Result]
) -> None:
    entry = MANIFEST[name]
    named = {entry["property"], *entry.get("also", [])}
    result = defective_results[name]
    assert result.violation is not None, f"{name} passed: {explain(result)}"
    assert result.violation.prop in named, explain(result)


def test_the_matrix_covers_at_least_three_correct_and_twelve_defective_servers() -> None:
    assert len(CORRECT) >= 3
    assert len(DEFECTIVE) >= 12


RELOAD_THEN_STOP = (
    ("start_master", ()),
    ("stop_worker", (2,)),
    ("stop_worker", (3,)),
    ("reload", (1,)),
    ("graceful_shutdown", (1,)),
    ("continue_worker", (2,)),
)
"""The core of a random walk that once made a false alarm on ``reexec_master``: the stop came
while the re-executed master still had its signals blocked, and it forked the reload's
generation after the stop. The verifier now lets a master take one signal before it sends the
next. (Without that wait, about one replay in three was reported as unexplained.)"""


def test_a_stop_sent_right_after_a_re_exec_reload_is_no_false_alarm() -> None:
    profile = profile_of("reexec_master")
    claim = settle_claim(profile, 2, discover=True)
    config = config_for(claim.profile, 2, DEFAULT_BOUNDS, claim.mode, claim.private_reuseport)
    for run in range(1, 6):
        result = verify(claim.profile, Plan(discover=False), replay=RELOAD_THEN_STOP, config=config)
        assert result.verdict == "conforms", f"run {run}: {explain(result)}"
