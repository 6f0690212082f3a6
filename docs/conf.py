"""Sphinx configuration: built with -W -n (warnings are errors, every reference must resolve)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "forkshare"
author = "forkshare developers"
copyright = "2026, forkshare developers"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "forkshare_tables",
]
nitpicky = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
intersphinx_mapping = {"python": ("https://docs.python.org/3", None)}
intersphinx_disabled_reftypes = ["*"]
html_theme = "alabaster"
html_static_path = ["_static"]
exclude_patterns = ["_build"]
