"""Small configurations on which the compact explorer is compared with the model, state by state.

Together they take every ``Config`` field through at least two values and fire every action of the
table; ``tests/model/test_compact.py`` checks both claims, so a field or an action added to the
model cannot go untested by the comparison. Each is small enough to audit every state (a few
thousand states, a few seconds).
"""

from __future__ import annotations

from dataclasses import replace

from forkshare.model.config import Bounds, Config, Mode, ParentDeath
from forkshare.model.variants import VARIANTS

NOTHING = Bounds(connections=0, kills=0, reloads=0)

BUDGETS: dict[str, Bounds] = {
    "accepts": Bounds(connections=2, kills=1, reloads=0),
    "stops": replace(NOTHING, connections=1, stops=1, shutdowns=1),
    "reload": replace(NOTHING, connections=1, reloads=1),
    "reload-shutdown": replace(NOTHING, reloads=1, shutdowns=1),
    "master-death": replace(NOTHING, connections=1, master_kills=1, starts=2),
    "upgrade": replace(NOTHING, upgrades=1, shutdowns=1),
    "helpers": replace(NOTHING, connections=1, helpers=1, shutdowns=1),
}
"""Budgets that each exercise a few environment actions, for every mode."""

TWO = Config(workers=2)

POLICIES: dict[str, Config] = {
    "one-worker-two-connections": Config(
        workers=1, worker_connections=2, backlog=0, bounds=Bounds(connections=2, reloads=0)
    ),
    "orphans-serve": Config(
        parent_death=ParentDeath.ORPHANS_SERVE,
        bounds=replace(NOTHING, connections=1, master_kills=1),
    ),
    "slow-parent-death": Config(
        parent_death_bound=5.0, bounds=replace(NOTHING, connections=1, master_kills=1)
    ),
    "defer-always": Config(defer_accept=True, bounds=Bounds(connections=2, reloads=0)),
    "defer-never": Config(defer_accept=False, bounds=Bounds(connections=2, reloads=0)),
    "inherit-listeners": Config(
        workers_receive_listeners=False, bounds=Bounds(connections=1, reloads=0)
    ),
    "receive-listeners": Config(
        workers_receive_listeners=True, bounds=Bounds(connections=1, reloads=0)
    ),
    "private-clones": Config(
        mode=Mode.REUSEPORT,
        workers_keep_all_clones=False,
        bounds=Bounds(connections=1, kills=1, reloads=1),
    ),
    "mutex-stop": Config(mode=Mode.MUTEX, bounds=replace(NOTHING, connections=1, stops=1, kills=1)),
    "passfd-kill": Config(mode=Mode.PASSFD, bounds=Bounds(connections=2, kills=1, reloads=0)),
}
"""Policies other than the defaults, each on a small budget."""


def corpus() -> dict[str, Config]:
    """Every configuration of the comparison, by a readable name."""
    configs = {
        f"{mode.value}-{budget}": Config(mode=mode, workers=2, bounds=bounds)
        for mode in Mode
        for budget, bounds in BUDGETS.items()
    }
    configs.update(POLICIES)
    for name, variant in VARIANTS.items():
        configs[f"variant-{name}"] = variant.apply(Config(workers=2, bounds=variant.bounds))
    return configs
