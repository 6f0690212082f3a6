"""Targets: what a server is, how to start it, and what it claims; one table of keys.

A profile is a TOML table (bundled ones in :mod:`forkshare.conformance.verify.profiles`, any file
given with ``--profile``, one written by ``--profile-out``, or the flags of an ad-hoc
``--command`` target). Every key is declared once in :data:`KEYS`, with the kinds of target it
applies to and its command-line flag (``reload_signal`` ↔ ``--reload-signal``): the loader, the
flags, ``--profile-out`` and the docs all read that table, so no key exists in one place only.

What a profile may leave open the verifier discovers (:mod:`~forkshare.conformance.verify.discovery`):
``mode = "auto"`` (the sharing mode, from /proc), ``parent_death_bound = "auto"`` (how fast the
workers notice their master's death), ``defer_accept = "auto"`` (TCP_DEFER_ACCEPT). The model
allows either way of every freedom of the specification (F1–F10) without being told.

Discussion:
    *Profiles are data, not classes.* nginx and gunicorn differ in which signal means what (nginx
    QUIT is graceful, gunicorn TERM is) and in what they claim on master death; a table per
    target keeps that difference visible and lets users write one for their own server without
    touching Python. Only the kinds that need a generated file (nginx.conf, a WSGI app, an Apache
    configuration, the Node cluster supervisor) get code, in
    :mod:`forkshare.conformance.verify.target`.

    *The default claim is the property.* ``parent_death`` defaults to ``workers-exit``: P13 says
    workers exit when their master dies, and a server whose orphans keep serving breaks it
    unless its profile says that is its design (nginx, Apache: ``orphans-serve``). Discovery
    measures how long the workers take; it never turns a defect into a claim.
"""

from __future__ import annotations

import math
import signal
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from forkshare.conformance.verify.errors import ProfileError
from forkshare.model.config import Mode, ParentDeath
from forkshare.model.liveness import LIVENESS

KINDS = ("command", "nginx", "gunicorn", "apache", "node")
AUTO = "auto"
DEFER_CHOICES = (AUTO, "on", "off")
SCHED_CHOICES = ("rr", "none")
CLONES_CHOICES = (AUTO, "all", "own")


@dataclass(frozen=True, slots=True)
class Profile:
    """What a target is and what it claims (each field is a key of :data:`KEYS`)."""

    name: str
    kind: str = "command"
    command: str = ""
    mode: str = AUTO
    """A :class:`~forkshare.model.config.Mode` value, or ``auto``."""
    parent_death: ParentDeath = ParentDeath.WORKERS_EXIT
    parent_death_bound: float | None = None
    """Seconds within which workers exit after their master's death; None: discover it."""
    worker_connections: int = 1
    reload_signal: signal.Signals = signal.SIGHUP
    graceful_signal: signal.Signals = signal.SIGQUIT
    fast_signal: signal.Signals = signal.SIGTERM
    upgrade_signal: signal.Signals | None = None
    defer_accept: str = AUTO
    """``on``, ``off`` or ``auto`` (either; discovery reports which)."""
    reuseport_clones: str = AUTO
    """Reuseport (F9): ``all`` (every worker keeps every clone, nginx), ``own`` (only its own,
    the reference server), or ``auto`` (discovered; ``all`` when discovery does not run)."""
    respawn_bound: float = LIVENESS["dead_workers_are_replaced"].bound
    service_bound: float = LIVENESS["queued_connections_are_accepted"].bound
    mutex_bound: float = LIVENESS["mutex_recovers_after_holder_death"].bound
    graceful_bound: float = LIVENESS["graceful_stop_completes"].bound
    shutdown_bound: float = LIVENESS["shutdown_releases_port"].bound
    trace: str = ""
    accept_mutex: bool = False
    reuseport: bool = False
    reuse_port: bool = False
    sched: str = "rr"

    @property
    def pinned_defer(self) -> bool | None:
        """The model's ``defer_accept`` pin: True, False, or None (either)."""
        return None if self.defer_accept == AUTO else self.defer_accept == "on"


Parser = Callable[[Any, str], Any]
"""Turns a raw value (from TOML or a flag's text) into the field's value; raises ProfileError."""


@dataclass(frozen=True, slots=True)
class Key:
    """One profile key: how it is parsed, which kinds of target it applies to, and its help."""

    name: str
    parse: Parser
    help: str
    kinds: tuple[str, ...] = KINDS

    @property
    def flag(self) -> str:
        """The command-line flag, e.g. ``--reload-signal``."""
        return "--" + self.name.replace("_", "-")


# ---------------------------------------------------------------------------------------------
# Value parsers (each names the key and the values it accepts)
# ---------------------------------------------------------------------------------------------


def parse_signal(text: str, what: str) -> signal.Signals:
    """``HUP``, ``SIGHUP`` or ``1`` as a signal.

    Raises:
        ProfileError: not a signal name or number.
    """
    name = str(text).upper()
    if name.isdigit() and int(name) in _SIGNAL_NUMBERS:
        return signal.Signals(int(name))
    key = name if name.startswith("SIG") else f"SIG{name}"
    if key not in signal.Signals.__members__:
        raise ProfileError(f"{what} = {text!r} is not a signal name such as HUP or QUIT")
    return signal.Signals[key]


_SIGNAL_NUMBERS = frozenset(member.value for member in signal.Signals)


def _choice(allowed: tuple[str, ...]) -> Parser:
    def parse(value: Any, what: str) -> str:
        if value not in allowed:
            raise ProfileError(f"{what} = {value!r} is not one of {', '.join(allowed)}")
        return str(value)

    return parse


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ProfileError(f"{what} must be a string, not {value!r}")
    return value


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ProfileError(f"{what} must be a positive integer, not {value!r}")
    return value


def _seconds(value: Any, what: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds < 0:
        raise ProfileError(f"{what} must be a number of seconds (0 or more), not {value!r}")
    return seconds


def _seconds_or_auto(value: Any, what: str) -> float | None:
    return None if value == AUTO else _seconds(value, what)


def _flag(value: Any, what: str) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
        return value.lower() in ("true", "yes", "on")
    if not isinstance(value, bool):
        raise ProfileError(f"{what} must be true or false, not {value!r}")
    return value


def _signal(value: Any, what: str) -> signal.Signals:
    return parse_signal(str(value), what)


def _parent_death(value: Any, what: str) -> ParentDeath:
    return ParentDeath(_choice(tuple(p.value for p in ParentDeath))(value, what))


def _liveness_help(name: str) -> str:
    prop = LIVENESS[name]
    return f"seconds for {name} ({prop.claim} default {prop.bound:g})"


KEYS: dict[str, Key] = {
    key.name: key
    for key in (
        Key("kind", _choice(KINDS), f"what the target is: {', '.join(KINDS)}"),
        Key(
            "command",
            _text,
            "kind command: the command line, with {port} {workers} {dir} {python} {forkshare}",
            ("command",),
        ),
        Key(
            "mode",
            _choice((AUTO, *(m.value for m in Mode))),
            "the sharing mode it claims, or auto (inferred from /proc)",
        ),
        Key(
            "parent_death",
            _parent_death,
            "what its workers do when the master dies: workers-exit (the property, default) "
            "or orphans-serve (a declared design: nginx, Apache)",
        ),
        Key(
            "parent_death_bound",
            _seconds_or_auto,
            "seconds within which workers exit after the master's death (0: at once, so an "
            "orphan may accept nothing), or auto (measured)",
        ),
        Key("worker_connections", _positive_int, "connections one worker serves at once"),
        Key("reload_signal", _signal, "the signal that reloads (default HUP)"),
        Key("graceful_signal", _signal, "the signal for a graceful stop (default QUIT)"),
        Key("fast_signal", _signal, "the signal for a fast stop (default TERM)"),
        Key("upgrade_signal", _signal, "the signal for a binary upgrade (none: never upgrades)"),
        Key(
            "defer_accept",
            _choice(DEFER_CHOICES),
            "TCP_DEFER_ACCEPT on its listener: on, off, or auto (either way is allowed)",
        ),
        Key(
            "reuseport_clones",
            _choice(CLONES_CHOICES),
            "reuseport: which clones each worker keeps (F9): all (nginx), own, or auto",
        ),
        Key("respawn_bound", _seconds, _liveness_help("dead_workers_are_replaced")),
        Key("service_bound", _seconds, _liveness_help("queued_connections_are_accepted")),
        Key("mutex_bound", _seconds, _liveness_help("mutex_recovers_after_holder_death")),
        Key("graceful_bound", _seconds, _liveness_help("graceful_stop_completes")),
        Key("shutdown_bound", _seconds, _liveness_help("shutdown_releases_port")),
        Key(
            "trace",
            _text,
            "where the target writes a `forkshare serve --trace` file (placeholders as command)",
        ),
        Key("accept_mutex", _flag, "kind nginx: accept_mutex on", ("nginx",)),
        Key("reuseport", _flag, "kind nginx: listen … reuseport", ("nginx",)),
        Key("reuse_port", _flag, "kind gunicorn: --reuse-port", ("gunicorn",)),
        Key("sched", _choice(SCHED_CHOICES), "kind node: cluster scheduling policy", ("node",)),
    )
}
"""Every profile key, by name (the fields of :class:`Profile` but ``name``)."""

_RETIRED = {
    "quit_closes_unused": "both ways are allowed now (F3): remove the key",
    "workers_keep_all_clones": 'it is now reuseport_clones = "all", "own" or "auto" (F9)',
}


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


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
    """Validate a decoded table (also used for flags and replay files).

    Raises:
        ProfileError: an unknown or retired key, a key that does not apply to the kind, a
            missing command, or a value of the wrong kind.
    """
    where = where or f"profile {name!r}"
    return with_values(Profile(name=name), table, where)


def with_values(profile: Profile, table: dict[str, Any], where: str) -> Profile:
    """``profile`` with the keys of ``table`` set (validated as :func:`profile_from_table`).

    Raises:
        ProfileError: see :func:`profile_from_table`.
    """
    for key in table:
        if key in _RETIRED:
            raise ProfileError(f"{where}: {key} is no longer a profile key; {_RETIRED[key]}")
        if key not in KEYS:
            raise ProfileError(
                f"{where}: unknown key {key!r}; known keys: {', '.join(sorted(KEYS))}"
            )
    values = {key: KEYS[key].parse(value, f"{where}: {key}") for key, value in table.items()}
    profile = replace(profile, **values)
    check_kind(profile, table, where)
    return profile


def check_kind(profile: Profile, given: dict[str, Any], where: str) -> None:
    """Every given key applies to the profile's kind, and a command target has its command.

    Raises:
        ProfileError: naming the key and the kinds it applies to.
    """
    for key in given:
        kinds = KEYS[key].kinds
        if profile.kind not in kinds:
            raise ProfileError(
                f"{where}: {key} applies only to kind {' or '.join(kinds)}, "
                f"not to kind {profile.kind!r}"
            )
    if profile.kind == "command" and not profile.command:
        raise ProfileError(
            f"{where}: kind 'command' needs a command, e.g. command = \"srv --port {{port}}\""
        )


def to_table(profile: Profile) -> dict[str, Any]:
    """The profile as a TOML-ready table: every key that differs from its default, plus kind."""
    default = Profile(name=profile.name)
    table: dict[str, Any] = {"kind": profile.kind}
    for f in fields(Profile):
        if f.name in ("name", "kind"):
            continue
        value = getattr(profile, f.name)
        if value == getattr(default, f.name):
            continue
        table[f.name] = _plain(value)
    return table


def _plain(value: Any) -> Any:
    if isinstance(value, signal.Signals):
        return value.name.removeprefix("SIG")
    if isinstance(value, ParentDeath):
        return value.value
    return value


def to_toml(profile: Profile, comments: dict[str, str] | None = None) -> str:
    """``profile`` as TOML text (what ``--profile-out`` writes); ``comments`` (key → text) are
    written above their keys, e.g. what discovery measured."""
    notes = comments or {}
    lines = [f"# forkshare profile {profile.name!r}"]
    for key, value in to_table(profile).items():
        if key in notes:
            lines.append(f"# {notes[key]}")
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
