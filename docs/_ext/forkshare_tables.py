"""Sphinx directives that render forkshare's tables from the code (no second list by hand)."""

from __future__ import annotations

from typing import Any


def setup(app: Any) -> dict[str, Any]:
    return {"version": "0.1", "parallel_read_safe": True}
