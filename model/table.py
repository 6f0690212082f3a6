"""The shape of the model's two tables: actions (guard + effect) and invariants (named claims).

Everything else — the explorer, the z3 encoding, the conformance rules, the docs — is keyed by the
names in :data:`forkshare.model.actions.ACTIONS` and :data:`forkshare.model.invariants.INVARIANTS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from itertools import product

from forkshare.model.config import Config
from forkshare.model.state import System


class Kind(StrEnum):
    """Who chooses an action."""

    ENVIRONMENT = "environment"
    """A client or an operator causes it; a tester can perform it on a real server."""
    INTERNAL = "internal"
    """The server or the kernel chooses it (which worker accepts, respawn, exit)."""


class Param(StrEnum):
    """The kinds of argument an action takes; the explorer enumerates each from the state."""

    PROCESS = "process"
    WORKER = "worker"
    MASTER = "master"
    SLOT = "slot"
    LISTENER = "listener"
    CONNECTION = "connection"


Guard = Callable[..., bool]
"""``guard(config, state, *args) -> bool``: may the action fire with these arguments?"""
Effect = Callable[..., tuple[System, ...]]
"""``effect(config, state, *args) -> successors``: every state the action may lead to."""


@dataclass(frozen=True, slots=True)
class Action:
    """One entry of the action table: a named guard and effect, with the kinds of its arguments."""

    name: str
    kind: Kind
    params: tuple[Param, ...]
    guard: Guard
    effect: Effect
    summary: str

    def arguments(
        self, config: Config, state: System, table: Candidates | None = None
    ) -> Iterator[tuple[int, ...]]:
        """Every argument tuple for which the guard holds in ``state``.

        ``table`` (from :func:`candidates`) may be passed when several actions are enumerated
        on the same state, to compute the candidate lists once.
        """
        choices = table if table is not None else candidates(config, state)
        for args in product(*(choices[param] for param in self.params)):
            if self.guard(config, state, *args):
                yield args

    def successors(
        self, config: Config, state: System, args: tuple[int, ...]
    ) -> tuple[System, ...]:
        """The states this action leads to from ``state`` with ``args`` (the guard must hold)."""
        return self.effect(config, state, *args)


Candidates = dict[Param, tuple[int, ...]]
"""For each kind of argument, the values it can take in one state."""


def candidates(config: Config, state: System) -> Candidates:
    """Every kind of argument's candidate values in ``state`` (see :meth:`Action.arguments`)."""
    return {param: _candidates(param, config, state) for param in Param}


def _candidates(param: Param, config: Config, state: System) -> tuple[int, ...]:
    if param is Param.PROCESS:
        return tuple(p.pid for p in state.processes)
    if param is Param.WORKER:
        return tuple(p.pid for p in state.processes if p.is_worker)
    if param is Param.MASTER:
        return tuple(p.pid for p in state.processes if p.is_master)
    if param is Param.SLOT:
        return tuple(range(config.workers))
    if param is Param.LISTENER:
        return tuple(lst.sid for lst in state.listeners if lst.listening)
    return tuple(c.cid for c in state.connections)


Predicate = Callable[[Config, System], bool]
Applies = Callable[[Config], bool]


def always(config: Config) -> bool:
    """An invariant that applies to every configuration."""
    return True


@dataclass(frozen=True, slots=True)
class Invariant:
    """One entry of the invariant table: a named predicate and the one-line claim it checks."""

    name: str
    claim: str
    holds: Predicate
    applies: Applies = always
    """Which configurations claim it (e.g. wake-one is not claimed by the poll mode)."""


def describe_step(name: str, args: tuple[int, ...], params: tuple[Param, ...]) -> str:
    """A readable call, e.g. ``kill_worker(worker3)`` or ``accept(worker2, sock0)``."""
    return f"{name}({', '.join(_name_argument(p, a) for p, a in zip(params, args, strict=True))})"


def _name_argument(param: Param, value: int) -> str:
    prefix = {
        Param.PROCESS: "proc",
        Param.WORKER: "worker",
        Param.MASTER: "master",
        Param.SLOT: "slot",
        Param.LISTENER: "sock",
        Param.CONNECTION: "conn",
    }[param]
    return f"{prefix}{value}"
