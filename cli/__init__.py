"""forkshare: how a prefork server shares its listening sockets, specified, proved, run and verified.

Layering (enforced by ``tests/test_architecture.py``)::

    forkshare.cli ──> forkshare.conformance ───────────> forkshare.model <── forkshare.proofs
          |             observe <── strace                  ^
          |                ^                                |
          |                └──────── verify ────────────────┘
          └──> forkshare.impl (stdlib only; never imports model, proofs or conformance)

``forkshare.conformance`` holds three rooms: ``observe`` (/proc, clients, the launcher; of the model
only the clients' outcome vocabulary), ``strace`` (on observe) and ``verify`` (on observe and the
model). ``forkshare.model`` is pure (no I/O, no time, no randomness). ``forkshare.proofs`` is the only
package that imports z3. ``forkshare.impl`` is the real server, verified from outside like any other.
"""

__version__ = "0.1.0"
