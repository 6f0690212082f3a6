"""Bounded waiting: poll a condition until it holds or a deadline passes.

Every wait of the verifier goes through :func:`wait_until` (a timeout is an error) or
:func:`poll_until` (a timeout is an answer), so no wait is unbounded and no sleep stands in for a
condition (the target's timing is not ours to guess).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from forkshare.conformance.observe.errors import WaitTimedOutError

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    interval: float = 0.02,
) -> T:
    """Call ``condition`` until it returns a truthy value, and return that value.

    Args:
        condition: polled every ``interval`` seconds; a falsy result (None, False, empty) means
            "not yet". Exceptions propagate.
        timeout: seconds before giving up (the condition is tried at least once).
        what: the condition in words, for the error ("nginx listens on 127.0.0.1:8080").
        interval: seconds between polls.

    Raises:
        WaitTimedOutError: when the deadline passes first.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimedOutError(f"gave up after {timeout:g} s waiting until {what}")
        time.sleep(interval)


def poll_until(
    condition: Callable[[], T | None],
    timeout: float,
    *,
    interval: float = 0.02,
) -> T | None:
    """Like :func:`wait_until`, for waits whose deadline passing is an answer, not an error
    ("the worker was not replaced within 6 s"): None then."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)
