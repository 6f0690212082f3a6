"""Targets: a command template plus a profile saying what the target claims to be.

A profile is a TOML table (bundled ones in :mod:`forkshare.conformance.verify.profiles`, or any file
given with ``--profile``) with these keys:

==================== =================================================================================
``kind``             ``command`` (a ``command`` template), ``nginx`` or ``gunicorn`` (the verifier
                     writes the configuration or the WSGI app into the scratch directory)
``command``          kind ``command``: the command line, with ``{port}``, ``{workers}``, ``{dir}``,
                     ``{python}`` and ``{forkshare}`` placeholders
``mode``             the sharing mode it claims (a :class:`~forkshare.model.config.Mode`) or ``auto``
``parent_death``     ``workers-exit`` or ``orphans-serve`` (:class:`~forkshare.model.config.ParentDeath`)
``worker_connections`` connections one worker serves at once
``reload_signal``, ``graceful_signal``, ``fast_signal`` signal names (``HUP``, ``QUIT``, ...)
``upgrade_signal``   optional; without it the verifier never upgrades
``trace``            optional: where the target writes a ``forkshare serve --trace`` file
``accept_mutex``, ``reuseport`` kind ``nginx`` only; ``reuse_port`` kind ``gunicorn`` only
``quit_closes_unused`` a graceful stop closes never-used connections at once (default true;
                     nginx: false, it waits for the request or client_header_timeout)
``workers_keep_all_clones`` reuseport: every worker keeps every clone (nginx, the default) or
                     only its own (false: the reference server)
==================== =================================================================================

Discussion:
    *Profiles are data, not classes.* nginx and gunicorn differ in which signal means what (nginx
    QUIT is graceful, gunicorn TERM is) and in what they claim on master death; a table per
    target keeps that difference visible and lets users write one for their own server without
    touching Python. Only the two kinds that need a generated file (nginx.conf, a WSGI app) get
    code, in :mod:`forkshare.conformance.verify.target`.
"""

from __future__ import annotations

import signal
import tomllib
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from forkshare.conformance.verify.errors import ProfileError
from forkshare.model.config import Mode, ParentDeath

KINDS = ("command", "nginx", "gunicorn")
AUTO = "auto"


@dataclass(frozen=True, slots=True)
class Profile:
    """What a target is and what it claims (see the module docstring for each key)."""

    name: str
    kind: str
    mode: str
    """A :class:`~forkshare.model.config.Mode` value, or ``auto``."""
    parent_death: ParentDeath
    worker_connections: int
    reload_signal: signal.Signals
    graceful_signal: signal.Signals
    fast_signal: signal.Signals
    command: str = ""
    upgrade_signal: signal.Signals | None = None
    trace: str = ""
    accept_mutex: bool = False
    reuseport: bool = False
    reuse_port: bool = False
    workers_keep_all_clones: bool = True
    quit_closes_unused: bool = True


def bundled_names() -> tuple[str, ...]:
    """Names of the bundled profiles (``forkshare-exclusive``, ``nginx``, ...), sorted."""
    folder = resources.files("forkshare.conformance.verify.profiles")
    return tuple(
        sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))
    )


def load_bundled(name: str) -> Profile:
    """The bundled profile ``name``.

    Raises:
        ProfileError: no bundled profile has that name (the message lists them).
    """
    if name not in bundled_names():
        raise ProfileError(
            f"no bundled target {name!r}: choose one of {', '.join(bundled_names())} "
            "or pass --profile FILE.toml / --command"
        )
    text = (
        resources.files("forkshare.conformance.verify.profiles")
        .joinpath(f"{name}.toml")
        .read_text()
    )
    return parse_profile(name, text)


def load_file(path: Path) -> Profile:
    """The profile in TOML file ``path``.

    Raises:
        ProfileError: the file cannot be read or is not a valid profile.
    """
    try:
        text = path.read_text()
    except OSError as error:
        raise ProfileError(f"cannot read profile {path}: {error.strerror}") from None
    return parse_profile(path.stem, text, origin=str(path))


def parse_profile(name: str, text: str, origin: str = "") -> Profile:
    """Parse and validate a profile's TOML text.

    Raises:
        ProfileError: naming the key at fault and the values it accepts.
    """
    where = origin or f"profile {name!r}"
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ProfileError(f"{where} is not valid TOML: {error}") from None
    return profile_from_table(name, table, where)


def profile_from_table(name: str, table: dict[str, Any], where: str = "") -> Profile:
    """Validate a decoded table (also used for ad-hoc ``--command`` targets).

    Raises:
        ProfileError: an unknown or missing key, or a value of the wrong kind.
    """
    where = where or f"profile {name!r}"
    known = {f.name for f in fields(Profile)} - {"name"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ProfileError(
            f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}"
        )
    kind = _choice(table, "kind", KINDS, where, default="command")
    if kind == "command" and not table.get("command"):
        raise ProfileError(
            f"{where}: kind 'command' needs a command, e.g. command = \"srv --port {{port}}\""
        )
    modes = (*(m.value for m in Mode), AUTO)
    return Profile(
        name=name,
        kind=kind,
        mode=_choice(table, "mode", modes, where, default=AUTO),
        parent_death=ParentDeath(
            _choice(table, "parent_death", tuple(p.value for p in ParentDeath), where)
        ),
        worker_connections=_positive(table, "worker_connections", where),
        reload_signal=_signal(table, "reload_signal", where),
        graceful_signal=_signal(table, "graceful_signal", where),
        fast_signal=_signal(table, "fast_signal", where),
        command=str(table.get("command", "")),
        upgrade_signal=_signal(table, "upgrade_signal", where)
        if "upgrade_signal" in table
        else None,
        trace=str(table.get("trace", "")),
        accept_mutex=_flag(table, "accept_mutex", where),
        reuseport=_flag(table, "reuseport", where),
        reuse_port=_flag(table, "reuse_port", where),
        workers_keep_all_clones=_flag(table, "workers_keep_all_clones", where, default=True),
        quit_closes_unused=_flag(table, "quit_closes_unused", where, default=True),
    )


def _choice(
    table: dict[str, Any],
    key: str,
    allowed: tuple[str, ...],
    where: str,
    default: str | None = None,
) -> str:
    value = table.get(key, default)
    if value is None:
        raise ProfileError(f"{where}: missing {key}; set it to one of {', '.join(allowed)}")
    if value not in allowed:
        raise ProfileError(f"{where}: {key} = {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _positive(table: dict[str, Any], key: str, where: str) -> int:
    value = table.get(key, 1)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ProfileError(f"{where}: {key} must be a positive integer, not {value!r}")
    return value


def _flag(table: dict[str, Any], key: str, where: str, default: bool = False) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ProfileError(f"{where}: {key} must be true or false, not {value!r}")
    return value


def _signal(table: dict[str, Any], key: str, where: str) -> signal.Signals:
    value = table.get(key)
    if value is None:
        raise ProfileError(f"{where}: missing {key}; name a signal such as HUP, QUIT or TERM")
    return parse_signal(str(value), f"{where}: {key}")


def parse_signal(text: str, what: str) -> signal.Signals:
    """``HUP``, ``SIGHUP`` or ``1`` as a signal.

    Raises:
        ProfileError: not a signal name or number.
    """
    name = text.upper()
    if name.isdigit() and int(name) in _SIGNAL_NUMBERS:
        return signal.Signals(int(name))
    key = name if name.startswith("SIG") else f"SIG{name}"
    if key not in signal.Signals.__members__:
        raise ProfileError(f"{what} = {text!r} is not a signal name such as HUP or QUIT")
    return signal.Signals[key]


_SIGNAL_NUMBERS = frozenset(member.value for member in signal.Signals)
