"""Sphinx configuration: built with -W -n (warnings are errors, every reference must resolve).

The build is offline: no intersphinx inventory is fetched, so references to the standard library
cannot resolve. The few stdlib names our signatures mention are listed in ``nitpick_ignore``
below, each for that reason; every forkshare name must resolve (they are all autodoc'd).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from docutils import nodes

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "forkshare"
author = "forkshare developers"
copyright = "2026, forkshare developers"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx_copybutton",
    "forkshare_tables",
    "forkshare_spec",
    "forkshare_verifier",
]
nitpicky = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# No inventory: the build must not touch the network (a mapping here would make Sphinx try to
# download it, and -W turns the failure into an error). Stdlib names are handled below.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
intersphinx_disabled_reftypes = ["*"]
# Furo: responsive (a phone gets a one-column page with the navigation in a drawer), light and dark
# following the reader's system, maintained, and what pip, attrs, urllib3 and Black use. The
# additions in _static/forkshare.css only add: no page width is fixed anywhere (issue 13).
html_theme = "furo"
html_title = "forkshare"
html_static_path = ["_static"]
html_css_files = ["forkshare.css"]
# sphinx-copybutton copies the commands of a ``console`` block without its "$ " prompts (.gp) and
# without the output shown after them (.go): what the reader pastes is what they should run.
copybutton_exclude = ".linenos, .gp, .go"
exclude_patterns = ["_build", "examples"]
# The proof-status column of ``.. forkshare-invariants::``: "module:function" returning
# {invariant name: status}. Empty: run forkshare.proofs' suite at build time (see _ext).
forkshare_proof_status = ""
# Where ``.. forkshare-cli:: NAME`` finds a parser when NAME's module has no build_parser():
# ``forkshare serve`` parses its options in forkshare.impl.options (the file re-read on HUP).
forkshare_cli_parsers = {"serve": "forkshare.impl.options:build_parser"}

# Translations: Sphinx's gettext catalogs, one per page (gettext_compact off), under
# locale/ja/LC_MESSAGES/. ``make docs`` builds English into _build/html and, with
# ``-D language=ja``, Japanese into _build/html/ja; ``make docs-po`` refreshes the catalogs after
# the English text changes (contributing.rst). Locations stay in the catalogs for the translator;
# no uuids, so that a refresh changes only what changed.
locale_dirs = ["locale/"]
gettext_compact = False
gettext_uuid = False
gettext_location = True

# Standard-library and builtin names that appear in forkshare's signatures. They would resolve
# through intersphinx's Python inventory, which an offline build cannot download; they are the
# only names allowed to stay unresolved.
_STDLIB = [
    "argparse.ArgumentParser",
    "argparse.Namespace",
    "collections.Counter",
    "collections.abc.Callable",
    "collections.abc.Iterable",
    "collections.abc.Iterator",
    "collections.abc.Mapping",
    "collections.abc.Sequence",
    "pathlib.Path",
    "Path",
    "signal.Signals",
    "socket.socket",
]
# Third-party names in the verifier's signatures (Hypothesis, rich): no inventory either.
_THIRD_PARTY = [
    "hypothesis._settings.settings",
    "hypothesis.strategies._internal.core.DataObject",
    "rich.console.Console",
]
# Names that exist only in annotations: a TypeVar, and an import alias of
# forkshare.conformance.verify.timing.Bounds (documented under its own name).
_ANNOTATION_ONLY = [
    "forkshare.conformance.observe.deadline.T",
    "TimedBounds",
]
nitpick_ignore = [("py:class", name) for name in _STDLIB + _THIRD_PARTY + _ANNOTATION_ONLY]


def _napoleon_except_attributes(
    app: Any, what: Any, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Napoleon for functions and classes only.

    forkshare's attribute and property docstrings are sentences ("Workers: the generation they
    were forked in."). Napoleon reads the first line of an attribute docstring as
    ``type: description`` and would turn "Workers" into an unresolvable type reference, so
    attribute, data and property docstrings are left as written.
    """
    from sphinx.ext.napoleon import _process_docstring

    if what not in ("attribute", "data", "property"):
        _process_docstring(app, what, name, obj, options, lines)


FURO_INLINE_CONTENTS = "this-will-duplicate-information-and-it-is-still-useful-here"
"""Furo's class for a ``.. contents::`` block kept on purpose (without it Furo paints it as an error)."""


def _keep_inline_contents(app: Any, doctree: nodes.document, docname: str) -> None:
    """Mark every ``.. contents::`` block as wanted, so that Furo shows it as a plain list.

    Discussion: Furo's own outline of the page sits in a right-hand sidebar that only appears on
    windows wider than 82em (about 1310 px); on a 1280 px laptop and on a phone it is behind a
    button. The pages that carry an inline "On this page" list (the long explanation, the command
    reference) keep it, rather than losing their only visible outline on those screens.
    """
    for topic in doctree.findall(nodes.topic):
        if "contents" in topic["classes"]:
            topic["classes"].append(FURO_INLINE_CONTENTS)


def setup(app: Any) -> None:
    """Napoleon for functions and classes only (:func:`_napoleon_except_attributes`); inline page
    contents kept under Furo (:func:`_keep_inline_contents`)."""
    from sphinx.ext.napoleon import _process_docstring

    for listener in list(app.events.listeners.get("autodoc-process-docstring", [])):
        if listener.handler is _process_docstring:
            app.disconnect(listener.id)
    app.connect("autodoc-process-docstring", _napoleon_except_attributes)
    # At write time (doctree-resolved), not read time: a doctree pickled before this hook existed
    # gets the class too.
    app.connect("doctree-resolved", _keep_inline_contents)
