"""The errors forkshare.proofs raises on purpose, each under :class:`forkshare.errors.ForkshareError`."""

from __future__ import annotations

from forkshare.errors import ForkshareError, UsageError


class ProofError(ForkshareError):
    """Base of the proof package's errors."""


class UnknownNameError(UsageError):
    """Raised when ``--only`` names no action, invariant, lemma, progress fact or variant; the
    message lists the valid names."""


class NotRepresentableError(ProofError):
    """Raised by :func:`forkshare.proofs.structure.abstract` for a concrete state that no reachable
    state resembles and the encoding cannot express (a socket on another port, a worker without a
    slot); the message names the offending object."""


class EncodingMismatchError(ProofError):
    """Raised when the encoding and the Python model disagree: a decoded counterexample does not
    replay through the model, or a table name has no encoding. The message names the action and
    the symbols that differ; the fix is in ``proofs/transitions.py`` or ``proofs/claims.py``."""
