"""A :class:`~forkshare.model.config.Config` flattened into the plain attributes the compact
actions read in their inner loops (an attribute of a slotted object, not a property or an enum
comparison per guard)."""

from __future__ import annotations

from dataclasses import fields
from typing import Final

from forkshare.model.actions import defer_choices
from forkshare.model.config import Config, Mode

CONFIG_FIELDS: Final = (
    "mode",
    "workers",
    "worker_connections",
    "backlog",
    "parent_death",
    "parent_death_bound",
    "force_unlock",
    "respawn",
    "reload_rebinds",
    "private_reuseport",
    "workers_keep_all_clones",
    "defer_accept",
    "workers_receive_listeners",
    "graceful_waits_for_requests",
    "helpers_close_listeners",
    "bounds",
)
"""Every ``Config`` field the compact actions honour. A field added to ``Config`` and not here
makes :class:`Rules` refuse to build (and the explorer fall back to the model's own actions)."""


BOUNDS_FIELDS: Final = (
    "bounds.connections",
    "bounds.starts",
    "bounds.kills",
    "bounds.master_kills",
    "bounds.stops",
    "bounds.reloads",
    "bounds.upgrades",
    "bounds.shutdowns",
    "bounds.helpers",
)
"""Every ``Bounds`` field the compact actions honour (the same rule as ``CONFIG_FIELDS``)."""


class UnknownConfigFieldError(Exception):
    """``Config`` has a field the compact actions do not know: they cannot be trusted with it."""


class Rules:
    """What the compact actions need of a configuration, precomputed."""

    __slots__ = (
        "backlog",
        "defer_choices",
        "force_unlock",
        "graceful_waits",
        "helpers_close",
        "keep_all_clones",
        "master_holds_listeners",
        "max_connections",
        "max_helpers",
        "max_kills",
        "max_master_kills",
        "max_reloads",
        "max_shutdowns",
        "max_starts",
        "max_stops",
        "max_upgrades",
        "mode_mutex",
        "mode_passfd",
        "mode_poll",
        "mode_reuseport",
        "orphans_accept_nothing",
        "receive_choices",
        "reload_rebinds",
        "respawn",
        "shared",
        "worker_connections",
        "workers",
    )

    def __init__(self, config: Config) -> None:
        unknown = {f.name for f in fields(config)} - set(CONFIG_FIELDS)
        unknown |= {f"bounds.{f.name}" for f in fields(config.bounds)} - set(BOUNDS_FIELDS)
        if unknown:
            raise UnknownConfigFieldError(", ".join(sorted(unknown)))
        self.mode_passfd = config.mode is Mode.PASSFD
        self.mode_mutex = config.mode is Mode.MUTEX
        self.mode_reuseport = config.mode is Mode.REUSEPORT
        self.mode_poll = config.mode is Mode.POLL
        self.shared = config.is_shared
        self.workers = config.workers
        self.worker_connections = config.worker_connections
        self.backlog = config.backlog
        self.orphans_accept_nothing = config.orphans_accept_nothing
        self.force_unlock = config.force_unlock
        self.respawn = config.respawn
        self.reload_rebinds = config.reload_rebinds
        self.master_holds_listeners = config.master_holds_listeners
        self.keep_all_clones = config.workers_keep_all_clones
        self.defer_choices = defer_choices(config)
        self.receive_choices = _receive_choices(config)
        self.graceful_waits = config.graceful_waits_for_requests
        self.helpers_close = config.helpers_close_listeners
        bounds = config.bounds
        self.max_connections = bounds.connections
        self.max_starts = bounds.starts
        self.max_kills = bounds.kills
        self.max_master_kills = bounds.master_kills
        self.max_stops = bounds.stops
        self.max_reloads = bounds.reloads
        self.max_upgrades = bounds.upgrades
        self.max_shutdowns = bounds.shutdowns
        self.max_helpers = bounds.helpers


def _receive_choices(config: Config) -> tuple[bool, ...] | None:
    """Shared modes (F5): True for a worker that gets the listener later over SCM_RIGHTS, False
    for one that inherits it; None where ``spawn_worker`` does not offer the choice."""
    if not config.is_shared or config.workers_receive_listeners is False:
        return None
    return (True,) if config.workers_receive_listeners else (False, True)
