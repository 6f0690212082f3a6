"""The timed properties: what must happen, and within how long, on a real server.

The model is untimed: a state it allows on the way (a worker not yet replaced, a client not yet
accepted) is allowed for any number of steps. A real server must also get there in time, and the
verifier measures it. Each entry here is a named property with its claim, its default bound and
the flag that changes it; :mod:`forkshare.model.invariants` holds the safety properties they
complement (``guards``), and ``forkshare.conformance.verify`` measures them.

Discussion:
    *Bounds are generous on purpose.* A bound that flags a correct server is worse than one that
    lets a slow one pass: Apache prefork replaces a killed child from its once-a-second idle
    maintenance (1.4–1.8 s measured, F10), so the respawn bound is 3 s, not the few milliseconds
    nginx and gunicorn take. Each bound can be changed per run (``flag``) or per profile.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Liveness:
    """One timed property: ``claim`` must come true within ``bound`` seconds."""

    name: str
    claim: str
    bound: float
    """The default bound, in seconds."""
    flag: str
    """The ``forkshare verify`` option that changes the bound."""
    guards: str
    """The safety invariant (or theme) it complements."""


LIVENESS: dict[str, Liveness] = {
    prop.name: prop
    for prop in (
        Liveness(
            "dead_workers_are_replaced",
            "A killed worker is replaced while the master is not stopping.",
            3.0,
            "--respawn-bound",
            "reuseport_queue_has_consumer",
        ),
        Liveness(
            "queued_connections_are_accepted",
            "A queued connection is accepted while a running, unstopped worker is idle.",
            1.0,
            "--service-bound",
            "no_queued_connection_lost",
        ),
        Liveness(
            "mutex_recovers_after_holder_death",
            "After the accept-mutex holder dies, accepts resume.",
            1.0,
            "--mutex-bound",
            "mutex_holder_is_alive",
        ),
        Liveness(
            "orphans_exit_within_bound",
            "Under workers-exit, every worker is gone after its master's death.",
            2.0,
            "--parent-death-bound",
            "orphans_exit_with_master",
        ),
        Liveness(
            "graceful_stop_completes",
            "A graceful stop ends after the last request in hand is answered.",
            5.0,
            "--graceful-bound",
            "requests_in_hand_are_answered",
        ),
        Liveness(
            "shutdown_releases_port",
            "After the master exits on a stop, no process holds the listener and the port refuses.",
            2.0,
            "--shutdown-bound",
            "no_listener_after_shutdown",
        ),
    )
}
"""Every timed property, by name: the verifier measures each and the docs render the table."""
