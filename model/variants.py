"""The unsafe designs real servers have shipped, as named configuration presets (B1–B16).

Each variant changes policy fields of a :class:`~forkshare.model.config.Config` and names the
invariant it is known to break. "Every unsafe variant must fail, and a test says so": the
explorer and the z3 bounded model checker must each find a violation of ``expected``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from forkshare.model.config import Bounds, Config, Mode


@dataclass(frozen=True, slots=True)
class Variant:
    """An unsafe design: how it changes a configuration and what it breaks."""

    name: str
    mode: Mode
    """The sharing mode it belongs to."""
    changes: dict[str, object]
    """Config fields it sets."""
    expected: str
    """The invariant it violates."""
    bounds: Bounds
    """Bounds small enough to find the counterexample quickly and large enough to reach it."""
    seen_in: str
    """Where real servers show it."""
    modes: frozenset[Mode] = frozenset()
    """Other modes the design can be tried in too (the verifier's diagnosis tries it there)."""

    def apply_to(self, config: Config) -> Config:
        """``config`` with this design's fields set, in ``config``'s own mode (the verifier's
        diagnosis tries a design in the mode the target claims)."""
        return replace(config, **self.changes)  # type: ignore[arg-type]

    def fits(self, mode: Mode) -> bool:
        """True when the design can be tried in ``mode``."""
        return mode is self.mode or mode in self.modes

    def apply(self, config: Config) -> Config:
        """``config`` changed into this unsafe design (mode forced to the variant's)."""
        return replace(config, mode=self.mode, **self.changes)  # type: ignore[arg-type]


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "private-reuseport",
            Mode.REUSEPORT,
            {"private_reuseport": True},
            "no_queued_connection_lost",
            Bounds(connections=2, kills=1, stops=0, reloads=0, shutdowns=0),
            "gunicorn --reuse-port (G2, B10, B11)",
        ),
        Variant(
            "no-force-unlock",
            Mode.MUTEX,
            {"force_unlock": False},
            "mutex_holder_is_alive",
            Bounds(connections=1, kills=1, stops=0, reloads=0, shutdowns=0),
            "Apache posixsem / non-robust pthread mutex (P2; facts §3)",
        ),
        Variant(
            "rebind-on-reload",
            Mode.EXCLUSIVE,
            {"reload_rebinds": True},
            "listeners_keep_identity",
            Bounds(connections=1, kills=0, stops=0, reloads=1, shutdowns=0),
            "servers that close and re-bind on reload (gunicorn when the address changes)",
            frozenset(Mode),
        ),
        Variant(
            "no-respawn",
            Mode.REUSEPORT,
            {"respawn": False},
            "reuseport_queue_has_consumer",
            Bounds(connections=0, kills=1, stops=0, reloads=0, shutdowns=0),
            "nginx worker exit code 2, reuseport clones without a consumer (B6, B7)",
        ),
        Variant(
            "graceful-drops-requests",
            Mode.BLOCKING,
            {"graceful_waits_for_requests": False},
            "requests_in_hand_are_answered",
            Bounds(connections=1, kills=0, stops=0, reloads=0, shutdowns=1),
            "workers that exit at once on the graceful signal (P8)",
            frozenset(Mode),
        ),
        Variant(
            "leaky-helper",
            Mode.EXCLUSIVE,
            {"helpers_close_listeners": False},
            "no_leaked_listener",
            Bounds(connections=0, kills=0, stops=0, reloads=0, shutdowns=0, helpers=1),
            "a helper started without FD_CLOEXEC on the listener (K2, K18)",
        ),
    )
}
"""Every unsafe variant, by the name ``forkshare explore --variant`` takes."""
