"""Sphinx directives that render forkshare's tables from the code (no second list by hand).

STYLE.md rule 2: one table of actions, one of invariants, one of variants drive the explorer, the
proofs, the verifier *and the docs*. These directives read those tables at build time, so a page
can never list an action, an invariant, a mode or a command option that the code does not have.

==============================  ================================================================
directive                       renders
==============================  ================================================================
``.. forkshare-actions::``      :data:`forkshare.model.actions.ACTIONS`: name, kind, parameters,
                                summary, the guard's docstring (option ``:kind:`` filters)
``.. forkshare-invariants::``   :data:`forkshare.model.invariants.INVARIANTS`: name, claim, which
                                configurations claim it, and the proof status when
                                :mod:`forkshare.proofs` exposes it (see below)
``.. forkshare-variants::``     :data:`forkshare.model.variants.VARIANTS`: name, mode (and the
                                other modes the verifier's diagnosis tries it in), the fields
                                it changes (with their docstrings), expected violation, seen in
``.. forkshare-modes::``        :class:`forkshare.model.config.Mode` members with their docstrings
                                and the invariants a mode does not claim
``.. forkshare-enum:: PATH``    any enum's members and their docstrings (e.g. ``Fate``)
``.. forkshare-cli:: NAME``     a sub-command's usage and options, read from its module's
                                ``build_parser()`` (or the function named for NAME in the
                                ``forkshare_cli_parsers`` setting); a command without a parser
                                fails the build: no hand-written usage can go stale
==============================  ================================================================

``.. forkshare-facts::`` and ``:fact:`` live in ``forkshare_facts`` (set up from here); the
specification's freedoms, monitors and timed properties in ``forkshare_spec``; the verifier's
profile keys, scenarios and the comparison of the bundled targets in ``forkshare_verifier``.

Proof status: the invariant table runs the proof suite at build time
(:func:`forkshare.proofs.suite.run_proof_suite`, about 4 s) and shows, per invariant, how its
initiation and consecution obligations ended over every safe configuration. The configuration
value ``forkshare_proof_status`` may name another zero-argument callable as ``"module:function"``
returning a mapping from invariant name to a status text. A status that cannot be computed, or an
invariant without one, is a build error, never a silently missing column.

Discussion:
    *Run the proofs at build time rather than render a recorded result.* A recorded
    ``forkshare prove --json`` file would need a test comparing it with a fresh run to stay
    honest, and that test costs the same 4 s; running the suite here cannot go stale at all.
    Each language is built by its own ``sphinx-build``, so ``make docs`` pays it twice.
"""

from __future__ import annotations

import argparse
import enum
import functools
import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import fields, replace
from itertools import product
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

CLI_WIDTH = 100
"""Width of the usage lines (argparse otherwise wraps at the terminal's width: not reproducible)."""

Cell = list[nodes.Node]


# ---------------------------------------------------------------------------------------------
# Building blocks: tables out of docutils nodes, RST snippets parsed in place
# ---------------------------------------------------------------------------------------------


def build_table(
    header: Sequence[str | Cell],
    rows: Iterable[Sequence[Cell]],
    widths: Sequence[int],
    title: str = "",
) -> nodes.table:
    """A docutils table with a header row; each cell is a list of body nodes.

    A header given as a string is not translated; give a parsed cell (:meth:`TableDirective.rst`)
    for a header that the gettext catalogs should translate.
    """
    table = nodes.table(classes=["forkshare-table"])
    if title:
        table += nodes.title(text=title)
    group = nodes.tgroup(cols=len(header))
    table += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    head += _row(
        [[nodes.paragraph(text=cell)] if isinstance(cell, str) else cell for cell in header]
    )
    group += head
    body = nodes.tbody()
    for cells in rows:
        body += _row(cells)
    group += body
    return table


def _row(cells: Iterable[Cell]) -> nodes.row:
    row = nodes.row()
    for content in cells:
        entry = nodes.entry()
        entry.extend(content)
        row += entry
    return row


def text(value: str) -> Cell:
    """A cell holding plain text (no markup is interpreted)."""
    return [nodes.paragraph(text=value)] if value else []


def literals(values: Iterable[str], separator: str = ", ") -> Cell:
    """A cell holding inline literals separated by ``separator``."""
    paragraph = nodes.paragraph()
    for index, value in enumerate(values):
        if index:
            paragraph += nodes.Text(separator)
        paragraph += nodes.literal(text=value)
    return [paragraph] if len(paragraph) else []


def qualified(obj: Any) -> str:
    """``module.qualname`` of a function or class, the target of a cross-reference."""
    return f"{obj.__module__}.{obj.__qualname__}"


def attribute_docs(module: str) -> dict[tuple[str, str], str]:
    """Attribute docstrings of ``module`` (enum members, dataclass fields), read from its source."""
    analyzer = ModuleAnalyzer.for_module(module)
    return {key: "\n".join(lines).strip() for key, lines in analyzer.find_attr_docs().items()}


def untranslatable(result: list[nodes.Node]) -> list[nodes.Node]:
    """``result`` with every text node marked untranslatable: generated from the code, it has no
    place in a page's gettext catalog (the docstrings are the source, in English)."""
    for node in result:
        for element in node.findall(nodes.TextElement):
            element["translatable"] = False
    return result


class TableDirective(SphinxDirective):
    """Common base: parse RST snippets (docstrings, cross-references) into cell nodes."""

    def run(self) -> list[nodes.Node]:
        """Note this page as generated from the code (see :func:`reread_generated`), then render."""
        generated_pages(self.env).add(self.env.docname)
        return self.render()

    def render(self) -> list[nodes.Node]:
        """The directive's nodes."""
        raise NotImplementedError

    def rst(self, source: str) -> Cell:
        """``source`` parsed as reStructuredText, in this directive's context (translatable: a
        directive that renders text from the code returns :func:`untranslatable` nodes)."""
        container = nodes.container()
        lines = StringList(inspect.cleandoc(source).splitlines(), source=self.get_source_info()[0])
        self.state.nested_parse(lines, self.content_offset, container)
        return list(container.children)


# ---------------------------------------------------------------------------------------------
# forkshare-actions
# ---------------------------------------------------------------------------------------------


def _kind_option(argument: str | None) -> str:
    return str(directives.choice(argument, ("environment", "internal")))


class ActionsDirective(TableDirective):
    """``.. forkshare-actions::`` — the action table, one row per entry of ``ACTIONS``."""

    option_spec = {"kind": _kind_option}  # noqa: RUF012 (docutils reads a class attribute)

    def render(self) -> list[nodes.Node]:
        from forkshare.model.actions import ACTIONS

        wanted = self.options.get("kind")
        rows = []
        for name, action in ACTIONS.items():
            if wanted and action.kind.value != wanted:
                continue
            guard = inspect.getdoc(action.guard) or ""
            row = [
                self.rst(f":func:`{name} <{qualified(action.effect)}>`"),
                text(action.kind.value),
                literals(p.value for p in action.params),
                text(action.summary),
                self.rst(f":func:`~{qualified(action.guard)}`: {guard}"),
            ]
            rows.append(row[:1] + row[2:] if wanted else row)
        header = ["action", "kind", "parameters", "summary", "guard: when it may fire"]
        widths = [18, 10, 14, 22, 56]
        if wanted:  # one kind per table: the column would repeat it on every row
            del header[1], widths[1]
        return untranslatable([build_table(header, rows, widths)])


# ---------------------------------------------------------------------------------------------
# forkshare-invariants
# ---------------------------------------------------------------------------------------------


def sample_configs() -> list[Any]:
    """Every combination of the configuration's enum and boolean policy fields (valid ones only),
    to find out on which of them an invariant's ``applies`` depends."""
    from forkshare.model.config import Config

    base = Config()
    choices: dict[str, list[Any]] = {}
    for field in fields(Config):
        value = getattr(base, field.name)
        if isinstance(value, enum.Enum):
            choices[field.name] = list(type(value))
        elif isinstance(value, bool):
            choices[field.name] = [False, True]
    configs = []
    for combination in product(*choices.values()):
        try:
            configs.append(replace(base, **dict(zip(choices, combination, strict=True))))
        except ValueError:  # e.g. private_reuseport without mode=reuseport
            continue
    return configs


def applicability(applies: Callable[[Any], bool], configs: Sequence[Any]) -> str:
    """Which configurations claim an invariant, in words (RST), derived from ``applies``."""
    claimed = [config for config in configs if applies(config)]
    if len(claimed) == len(configs):
        return "every configuration"
    if not claimed:
        return "no configuration"
    for field in fields(configs[0]):
        values = {getattr(c, field.name) for c in claimed}
        if all(applies(c) == (getattr(c, field.name) in values) for c in configs):
            return _describe_values(field.name, values, {getattr(c, field.name) for c in configs})
    return f"{len(claimed)} of {len(configs)} policy combinations (see the predicate)"


def _describe_values(name: str, values: set[Any], every: set[Any]) -> str:
    def show(value: Any) -> str:
        return f"``{value.value if isinstance(value, enum.Enum) else value}``"

    if values == {True}:
        return f"``{name}`` on"
    if values == {False}:
        return f"``{name}`` off"
    missing = every - values
    ordered = sorted(missing if len(missing) < len(values) else values, key=str)
    listed = ", ".join(show(v) for v in ordered)
    if len(missing) < len(values):
        return f"every ``{name}`` but {listed}"
    return f"``{name}`` = {listed}" if len(ordered) == 1 else f"``{name}`` in {listed}"


def proof_status(app: Any) -> Mapping[str, str]:
    """Per-invariant proof status: from the ``forkshare_proof_status`` callable when one is named,
    else from a run of the proof suite (:func:`suite_statuses`)."""
    spec = app.config.forkshare_proof_status
    if not spec:
        return suite_statuses()
    module_name, _, attribute = spec.partition(":")
    function = getattr(importlib.import_module(module_name), attribute)
    return {str(name): str(status) for name, status in dict(function()).items()}


@functools.cache
def suite_statuses() -> dict[str, str]:
    """Run the whole proof suite once per build and summarise, per invariant, how its initiation
    and consecution obligations ended over every safe configuration (``forkshare prove``)."""
    from forkshare.proofs.report import Kind, Result
    from forkshare.proofs.suite import run_proof_suite

    report = run_proof_suite()
    results: dict[str, list[Any]] = {}
    configurations: dict[str, set[str]] = {}
    for record in report.records:
        if record.kind in (Kind.INIT, Kind.CONSECUTION):
            results.setdefault(record.invariant, []).append(record.result)
            configurations.setdefault(record.invariant, set()).add(record.target)
    statuses = {}
    for name, ended in results.items():
        places = f"{len(ended)} obligations, {len(configurations[name])} configurations"
        if all(result == Result.PROVED for result in ended):
            statuses[name] = f"proved ({places})"
        else:
            counts = ", ".join(f"{ended.count(r)} {r.value}" for r in Result if r in ended)
            statuses[name] = f"NOT proved: {counts} ({places})"
    return statuses


class InvariantsDirective(TableDirective):
    """``.. forkshare-invariants::`` — the invariant table, one row per entry of ``INVARIANTS``."""

    def render(self) -> list[nodes.Node]:
        from forkshare.model.invariants import INVARIANTS

        configs = sample_configs()
        statuses = proof_status(self.env.app)
        missing = [name for name in INVARIANTS if name not in statuses]
        if missing:
            raise self.error(
                f"no proof status for {', '.join(missing)}: is it in forkshare.proofs?"
            )
        rows = [
            [
                self.rst(f":func:`{name} <{qualified(invariant.holds)}>`"),
                text(invariant.claim),
                self.rst(applicability(invariant.applies, configs)),
                text(statuses[name]),
            ]
            for name, invariant in INVARIANTS.items()
        ]
        header = ["invariant", "claim", "claimed by", "proof status"]
        return untranslatable([build_table(header, rows, (24, 40, 20, 16))])


# ---------------------------------------------------------------------------------------------
# forkshare-variants
# ---------------------------------------------------------------------------------------------


class VariantsDirective(TableDirective):
    """``.. forkshare-variants::`` — the unsafe designs of ``VARIANTS`` and what each breaks."""

    def render(self) -> list[nodes.Node]:
        from forkshare.model.config import Config
        from forkshare.model.invariants import INVARIANTS
        from forkshare.model.variants import VARIANTS

        field_docs = attribute_docs(Config.__module__)
        rows = []
        for name, variant in VARIANTS.items():
            changes = "\n\n".join(
                f"``{key} = {value!r}``: {field_docs.get(('Config', key), '')}"
                for key, value in variant.changes.items()
            )
            expected = INVARIANTS[variant.expected].holds
            budget = ", ".join(
                f"{f.name}={getattr(variant.bounds, f.name)}"
                for f in fields(variant.bounds)
                if getattr(variant.bounds, f.name)
            )
            rows.append(
                [
                    literals([name]),
                    literals([variant.mode.value]) + _other_modes(variant),
                    self.rst(changes),
                    self.rst(f":func:`{variant.expected} <{qualified(expected)}>`"),
                    text(variant.seen_in),
                    self.rst(f"``forkshare explore --variant {name}``\n\n(``--all``: {budget})"),
                ]
            )
        header = ("variant", "mode", "what it changes", "violates", "seen in", "reproduce")
        return untranslatable([build_table(header, rows, (16, 10, 34, 20, 26, 24))])


def _other_modes(variant: Any) -> Cell:
    """The other modes the verifier's diagnosis tries ``variant`` in (``Variant.modes``)."""
    from forkshare.model.config import Mode

    others = sorted(m.value for m in variant.modes if m is not variant.mode)
    if not others:
        return []
    if len(others) == len(Mode) - 1:
        return text("diagnosis: every mode")
    return text("diagnosis also: " + ", ".join(others))


# ---------------------------------------------------------------------------------------------
# forkshare-modes, forkshare-enum
# ---------------------------------------------------------------------------------------------


def _import_object(path: str) -> Any:
    module_name, _, attribute = path.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


class EnumDirective(TableDirective):
    """``.. forkshare-enum:: dotted.path.Enum`` — an enum's members and their docstrings."""

    required_arguments = 1

    def render(self) -> list[nodes.Node]:
        cls = _import_object(self.arguments[0])
        docs = attribute_docs(cls.__module__)
        rows = [
            [literals([str(m.value)]), self.rst(docs.get((cls.__name__, m.name), ""))] for m in cls
        ]
        return untranslatable([build_table(("value", "meaning"), rows, (18, 82))])


def started(config: Any) -> Any:
    """The model's state after ``start_master``, a ``spawn_worker`` per slot and, where the
    guard allows, one ``acquire_mutex``: what a freshly started server looks like in ``config``."""
    from forkshare.model.actions import ACTIONS
    from forkshare.model.explorer import initial_state

    state = ACTIONS["start_master"].successors(config, initial_state(), ())[0]
    for name in ("spawn_worker", "acquire_mutex"):
        action = ACTIONS[name]
        for _ in range(config.workers):
            args = next(action.arguments(config, state), None)
            if args is not None:
                state = action.successors(config, state, args)[0]
    return state


def _roles(processes: Iterable[Any]) -> str:
    counts: dict[str, int] = {}
    for proc in processes:
        counts[proc.role.value] = counts.get(proc.role.value, 0) + 1
    return " + ".join(f"{n} {role}{'s' if n > 1 else ''}" for role, n in counts.items()) or "none"


def sharing_summary(config: Any) -> str:
    """Sockets, holders and waiters of a freshly started server, from the model itself."""
    from forkshare.model.actions import waiters

    state = started(config)
    lines = []
    for listener in state.listeners:
        kind = "reuseport socket" if listener.reuseport else "socket"
        lines.append(
            f"{kind} {listener.sid}: held by {_roles(state.holders(listener.sid))}; "
            f"waiting: {_roles(waiters(config, state, listener))}"
        )
    return "\n".join(lines)


class ModesDirective(TableDirective):
    """``.. forkshare-modes::`` — the sharing modes, what they mean, what a started server looks
    like in each (computed by running the model) and the invariants a mode does not claim."""

    option_spec = {"workers": directives.positive_int}  # noqa: RUF012

    def render(self) -> list[nodes.Node]:
        from forkshare.model.config import Config, Mode
        from forkshare.model.invariants import INVARIANTS

        docs = attribute_docs(Mode.__module__)
        workers = self.options.get("workers", 2)
        rows = []
        for mode in Mode:
            config = Config(mode=mode, workers=workers)
            unclaimed = [n for n, inv in INVARIANTS.items() if not inv.applies(config)]
            rows.append(
                [
                    literals([mode.value]),
                    self.rst(docs.get(("Mode", mode.name), "")),
                    [
                        nodes.line_block(
                            "", *(nodes.line(text=t) for t in sharing_summary(config).splitlines())
                        )
                    ],
                    literals(unclaimed) or text("—"),
                ]
            )
        header = ("mode", "meaning", f"after start ({workers} workers)", "not claimed")
        return untranslatable([build_table(header, rows, (11, 40, 36, 13))])


# ---------------------------------------------------------------------------------------------
# forkshare-cli
# ---------------------------------------------------------------------------------------------


def command_parser(name: str, overrides: Mapping[str, str]) -> argparse.ArgumentParser:
    """The parser of ``forkshare NAME``.

    The parser is ``build_parser()`` of the command's module (``forkshare.cli.SUBCOMMANDS``), or
    the ``"module:function"`` given for NAME in the ``forkshare_cli_parsers`` setting.

    Raises:
        ImportError: the module does not exist.
        LookupError: the module has no such function.
    """
    from forkshare.cli import SUBCOMMANDS

    module_name, _, function = overrides.get(name, SUBCOMMANDS[name].module).partition(":")
    module = importlib.import_module(module_name)
    build = getattr(module, function or "build_parser", None)
    if build is None:
        raise LookupError(f"{module_name} has no {function or 'build_parser'}()")
    parser: argparse.ArgumentParser = build()
    formatter: Any = parser.formatter_class  # argparse types it as a protocol without ``width``
    parser.formatter_class = functools.partial(formatter, width=CLI_WIDTH)
    return parser


def _option_name(action: argparse.Action) -> str:
    if not action.option_strings:
        return str(action.metavar or action.dest)
    flags = ", ".join(action.option_strings)
    if action.nargs == 0:
        return flags
    return f"{flags} {action.metavar or action.dest.upper()}"


def _option_default(action: argparse.Action) -> str:
    default = action.default
    if default is None or default is argparse.SUPPRESS or action.nargs == 0:
        return ""
    return str(default)


def _option_meaning(action: argparse.Action) -> Cell:
    cell = text(action.help or "")
    if action.choices:
        choices = literals(map(str, action.choices), separator=", ")
        choices[0].insert(0, nodes.Text("one of: "))
        cell += choices
    return cell


class CliDirective(TableDirective):
    """``.. forkshare-cli:: NAME`` — usage and options of ``forkshare NAME`` from its parser.

    There is no fallback text: a command whose parser cannot be built fails the build.
    """

    required_arguments = 1

    def render(self) -> list[nodes.Node]:
        from forkshare.cli import SUBCOMMANDS

        name = self.arguments[0]
        if name not in SUBCOMMANDS:
            raise self.error(f"no sub-command {name!r}; known: {', '.join(SUBCOMMANDS)}")
        try:
            parser = command_parser(name, self.config.forkshare_cli_parsers)
        except (ImportError, LookupError) as error:
            raise self.error(f"forkshare {name}: no argument parser to document: {error}") from None
        usage = parser.format_usage().removeprefix("usage: ").strip()
        result: list[nodes.Node] = [nodes.literal_block(usage, usage, language="text")]
        if parser.description:
            result += text(parser.description)
        rows = [
            [
                literals([_option_name(action)]),
                literals([_option_default(action)]) if _option_default(action) else [],
                _option_meaning(action),
            ]
            for action in parser._actions
            if not isinstance(action, argparse._HelpAction) and action.help != argparse.SUPPRESS
        ]
        result.append(build_table(("option", "default", "meaning"), rows, (32, 12, 56)))
        if parser.epilog:
            result += text(parser.epilog)
        return untranslatable(result)


# ---------------------------------------------------------------------------------------------
# Short cross-references in docstrings
# ---------------------------------------------------------------------------------------------


def resolve_short_name(app: Any, env: Any, node: Any, contnode: nodes.Element) -> Any:
    """Resolve ``:class:`System``` written in a module that imports the name, not defines it.

    Docstrings name forkshare objects the way the code does (``System``, ``System.next_pid``).
    When the Python domain finds no such target, look for exactly one forkshare object whose
    dotted name ends with the written one; an ambiguous or unknown name stays a warning.
    """
    from sphinx.util.nodes import make_refnode

    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip(".~")
    domain = env.get_domain("py")
    matches = [
        (name, obj)
        for name, obj in domain.objects.items()
        if name.startswith("forkshare.") and name.endswith("." + target)
    ]
    if len(matches) != 1:
        return None
    name, obj = matches[0]
    return make_refnode(app.builder, node["refdoc"], obj.docname, obj.node_id, contnode, name)


def generated_pages(env: Any) -> set[str]:
    """The pages that render a table from the code, recorded on the build environment."""
    if not hasattr(env, "forkshare_generated"):
        env.forkshare_generated = set()
    pages: set[str] = env.forkshare_generated
    return pages


def reread_generated(
    app: Any, env: Any, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    """Read every generated page again on every build: Sphinx re-reads a page when its source or
    a module autodoc'd on it changes, but not when the proofs, a parser or the facts file does,
    and a cached table would silently go stale."""
    return sorted(generated_pages(env) - removed)


def _purge(app: Any, env: Any, docname: str) -> None:
    generated_pages(env).discard(docname)


def _merge(app: Any, env: Any, docnames: set[str], other: Any) -> None:
    generated_pages(env).update(generated_pages(other) & docnames)


def setup(app: Any) -> dict[str, Any]:
    """Register the directives, the configuration values and the facts extension."""
    app.add_config_value("forkshare_proof_status", "", "env", [str])
    app.add_config_value("forkshare_cli_parsers", {}, "env", [dict])
    app.add_directive("forkshare-actions", ActionsDirective)
    app.add_directive("forkshare-invariants", InvariantsDirective)
    app.add_directive("forkshare-variants", VariantsDirective)
    app.add_directive("forkshare-modes", ModesDirective)
    app.add_directive("forkshare-enum", EnumDirective)
    app.add_directive("forkshare-cli", CliDirective)
    app.connect("missing-reference", resolve_short_name)
    app.connect("env-get-outdated", reread_generated)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.setup_extension("forkshare_facts")
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
