"""The errors of ``forkshare verify`` beyond the observer's own
(:mod:`forkshare.conformance.observe.errors`), each with its exit status.

A target that breaks a property is not an error but a verdict:
:class:`~forkshare.conformance.verify.machine.NonconformanceError` is an ``AssertionError``, so that
Hypothesis treats it as a failing example and shrinks it, and :func:`~forkshare.conformance.verify.verify.verify`
turns it into a :class:`~forkshare.conformance.verify.verify.Result` (exit 1 with the property named).
"""

from __future__ import annotations

from forkshare.errors import ForkshareError, UsageError


class ProfileError(UsageError):
    """A profile is missing, malformed, or names an unknown mode, policy or signal (exit 2)."""


class ClosureTooLargeError(ForkshareError):
    """The model allows more states after one step than the verifier tracks (exit 1): the run
    cannot judge the target. The message names the step and how to narrow the model (pin
    ``defer_accept`` in the profile, run fewer workers)."""
