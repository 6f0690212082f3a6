"""The server's options: the command line, the optional TOML file, validation.

Precedence is command line > ``--config`` file > defaults (gunicorn's rule). The file is re-read on
every HUP, so :func:`load_options` is called again with the same argument vector; a file that no
longer validates makes the reload fail and the old configuration stays (nginx's ``ngx_init_cycle``
rollback).

Discussion:
    *Blocking mode and ``--worker-connections``.* A worker blocked in ``accept()`` cannot wait for
    anything else, so ``--mode blocking`` serves one connection at a time (like Apache prefork with
    one ``Listen``). Asking for more, or for several ``--listen`` addresses (one blocking
    ``accept()`` waits on one socket; Apache serialises a ``poll()`` with a mutex instead), is a
    usage error naming the modes that can do it, rather than a silent downgrade.

    *Mode changes on reload.* The mode decides which sockets exist (one per slot in reuseport),
    whether they are blocking (a flag of the shared open file description, so every holder sees
    it) and whether the shared-memory mutex exists before the fork. A HUP that changes the mode is
    therefore refused; the binary upgrade (USR2) re-reads the configuration in a new master and can
    change it.
"""

from __future__ import annotations

import argparse
import grp
import ipaddress
import os
import pwd
import socket
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, cast, get_args

from forkshare.impl.errors import OptionsError

Mode = Literal["blocking", "poll", "exclusive", "mutex", "reuseport", "passfd"]
MODES: Final[tuple[Mode, ...]] = get_args(Mode)
LOG_LEVELS: Final = ("debug", "info", "warning", "error")

DEFAULT_LISTEN: Final = "127.0.0.1:8080"
DEFAULT_BACKLOG: Final = 511  # NGX_LISTEN_BACKLOG on Linux; the kernel caps it at somaxconn
DEFAULT_WORKER_CONNECTIONS: Final = 512  # nginx's default worker_connections
MAX_WORKERS: Final = 512


@dataclass(frozen=True, slots=True)
class Address:
    """A TCP address to listen on; ``str()`` gives ``127.0.0.1:8080`` or ``[::1]:8080``."""

    host: str
    port: int
    family: socket.AddressFamily

    def __str__(self) -> str:
        if self.family == socket.AF_INET6:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"

    @property
    def sockaddr(self) -> tuple[str, int]:
        """The address in the form ``socket.bind`` takes."""
        return (self.host, self.port)


@dataclass(frozen=True, slots=True)
class Options:
    """Everything one master generation runs with; ``argv`` is kept to re-read it on HUP/USR2."""

    listen: tuple[Address, ...]
    listen_explicit: bool
    workers: int
    mode: Mode
    worker_connections: int
    backlog: int
    user: str | None
    group: str | None
    pidfile: Path | None
    config: Path | None
    trace: Path | None
    log_level: str
    graceful_timeout: float
    keepalive_timeout: float
    header_timeout: float
    argv: tuple[str, ...]

    @property
    def is_reuseport(self) -> bool:
        """Whether every address gets one SO_REUSEPORT socket per worker slot."""
        return self.mode == "reuseport"


# The keys a --config file may set: the option names with dashes turned into underscores.
CONFIG_KEYS: Final = (
    "listen",
    "workers",
    "mode",
    "worker_connections",
    "backlog",
    "user",
    "group",
    "pidfile",
    "trace",
    "log_level",
    "graceful_timeout",
    "keepalive_timeout",
    "header_timeout",
)


def build_parser() -> argparse.ArgumentParser:
    """The ``forkshare serve`` parser; every default is None so a config file can fill it in."""
    parser = argparse.ArgumentParser(
        prog="forkshare serve",
        description="The reference prefork server: a master that owns the listening sockets and "
        "forked workers that share them in the chosen mode. Signals as in nginx: HUP reload, "
        "QUIT graceful stop, TERM/INT fast stop, USR2 binary upgrade, WINCH stop the workers.",
    )
    add = parser.add_argument
    add("--listen", action="append", metavar="HOST:PORT", help=f"repeatable ({DEFAULT_LISTEN})")
    add("--workers", type=int, metavar="N", help="worker processes (CPU count)")
    add("--mode", choices=MODES, help="how workers share the listening sockets (exclusive)")
    add("--worker-connections", type=int, metavar="K", help="connections per worker; 1 = sync")
    add("--backlog", type=int, metavar="B", help=f"listen() backlog ({DEFAULT_BACKLOG})")
    add("--user", metavar="U", help="workers run as this user when started as root")
    add("--group", metavar="G", help="workers run as this group (the user's group)")
    add("--pidfile", type=Path, metavar="FILE", help="write the master's pid here")
    add("--config", type=Path, metavar="FILE.toml", help="options file, re-read on HUP")
    add("--trace", type=Path, metavar="FILE", help="append model-level events as JSON lines")
    add("--log-level", choices=LOG_LEVELS, help="stderr log threshold (info)")
    add("--graceful-timeout", type=float, metavar="S", help="bound of a graceful stop (10)")
    add("--keepalive-timeout", type=float, metavar="S", help="idle keep-alive bound (5)")
    add("--header-timeout", type=float, metavar="S", help="bound to receive a request head (10)")
    return parser


def load_options(argv: Sequence[str]) -> Options:
    """Parse ``argv`` (and the ``--config`` file it names) into validated :class:`Options`.

    Raises:
        OptionsError: a value is invalid; the message names the option and the fix.
        SystemExit: argparse's own usage errors (status 2) and ``--help`` (status 0).
    """
    given = {k: v for k, v in vars(build_parser().parse_args(list(argv))).items() if v is not None}
    config_path = cast("Path | None", given.pop("config", None))
    merged: dict[str, Any] = dict(read_config(config_path)) if config_path else {}
    merged.update(given)
    return validate(merged, config_path, tuple(argv))


def read_config(path: Path) -> Mapping[str, Any]:
    """The keys of a TOML options file; unknown keys are errors, not silently ignored."""
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except OSError as error:
        raise OptionsError(f"cannot read --config {path}: {error.strerror}") from error
    except tomllib.TOMLDecodeError as error:
        raise OptionsError(f"--config {path} is not valid TOML: {error}") from error
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise OptionsError(
            f"unknown key {unknown[0]!r} in {path}; known keys: {', '.join(CONFIG_KEYS)}"
        )
    if isinstance(data.get("listen"), str):
        data["listen"] = [data["listen"]]
    return data


def validate(raw: Mapping[str, Any], config: Path | None, argv: tuple[str, ...]) -> Options:
    """Check every value and apply defaults; see :func:`load_options`."""
    mode = cast(Mode, _choice(raw, "mode", MODES, "exclusive"))
    listen_raw = raw.get("listen")
    listen = tuple(parse_address(text) for text in (listen_raw or [DEFAULT_LISTEN]))
    default_connections = 1 if mode == "blocking" else DEFAULT_WORKER_CONNECTIONS
    options = Options(
        listen=listen,
        listen_explicit=bool(listen_raw),
        workers=_integer(raw, "workers", os.cpu_count() or 1, 1, MAX_WORKERS),
        mode=mode,
        worker_connections=_integer(raw, "worker_connections", default_connections, 1, 65536),
        backlog=_integer(raw, "backlog", DEFAULT_BACKLOG, 1, 65535),
        user=_text(raw, "user"),
        group=_text(raw, "group"),
        pidfile=_path(raw, "pidfile"),
        config=config,
        trace=_path(raw, "trace"),
        log_level=_choice(raw, "log_level", LOG_LEVELS, "info"),
        graceful_timeout=_seconds(raw, "graceful_timeout", 10.0),
        keepalive_timeout=_seconds(raw, "keepalive_timeout", 5.0),
        header_timeout=_seconds(raw, "header_timeout", 10.0),
        argv=argv,
    )
    _check_mode(options)
    _check_identity(options)
    if len(set(options.listen)) != len(options.listen):
        raise OptionsError("the same --listen address is given twice; list each address once")
    return options


def parse_address(text: str) -> Address:
    """Parse ``HOST:PORT``, ``[IPV6]:PORT`` or a bare ``PORT`` (all IPv4 addresses).

    Raises:
        OptionsError: malformed text, an unknown host, or a port outside 1-65535.
    """
    host, sep, port_text = str(text).rpartition(":")
    if not sep:
        host, port_text = "0.0.0.0", str(text)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise OptionsError(
            f"--listen {text!r}: the port must be a number from 1 to 65535, e.g. 127.0.0.1:8080"
        )
    if host.startswith("[") and host.endswith("]"):
        return Address(_literal(host[1:-1], text, 6), int(port_text), socket.AF_INET6)
    if host in ("", "*"):
        host = "0.0.0.0"
    if _is_ip_literal(host):
        return Address(_literal(host, text, 4), int(port_text), socket.AF_INET)
    return Address(_resolve(host, text), int(port_text), socket.AF_INET)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _literal(host: str, text: str, version: int) -> str:
    try:
        parsed = ipaddress.ip_address(host)
    except ValueError as error:
        raise OptionsError(f"--listen {text!r}: {host!r} is not an IPv{version} address") from error
    if parsed.version != version:
        raise OptionsError(f"--listen {text!r}: write IPv6 addresses in brackets, [::1]:8080")
    return str(parsed)


def _resolve(host: str, text: str) -> str:
    try:
        info = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise OptionsError(
            f"--listen {text!r}: cannot resolve {host!r}: {error.strerror}"
        ) from None
    return str(info[0][4][0])


def _check_mode(options: Options) -> None:
    if options.mode != "blocking":
        return
    if options.worker_connections != 1:
        raise OptionsError(
            "--mode blocking waits in a blocking accept() and so serves one connection at a "
            "time: drop --worker-connections, or use --mode exclusive/poll/mutex/reuseport/passfd"
        )
    if len(options.listen) > 1:
        raise OptionsError(
            "--mode blocking waits in accept() on a single socket: give one --listen, or use "
            "--mode exclusive (epoll over every listener)"
        )


def _check_identity(options: Options) -> None:
    if options.user is not None:
        try:
            pwd.getpwnam(options.user)
        except KeyError:
            raise OptionsError(
                f"--user {options.user!r}: no such user; create it or name an existing one"
            ) from None
    if options.group is not None:
        try:
            grp.getgrnam(options.group)
        except KeyError:
            raise OptionsError(
                f"--group {options.group!r}: no such group; create it or name an existing one"
            ) from None
        if options.user is None:
            raise OptionsError(f"--group {options.group!r} needs --user as well")


def _name(key: str) -> str:
    return "--" + key.replace("_", "-")


def _integer(raw: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise OptionsError(f"{_name(key)} {value!r}: give a whole number from {low} to {high}")
    return value


def _seconds(raw: Mapping[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 86400:
        raise OptionsError(f"{_name(key)} {value!r}: give a number of seconds above 0, e.g. 5")
    return float(value)


def _choice(raw: Mapping[str, Any], key: str, choices: Sequence[str], default: str) -> str:
    value = raw.get(key, default)
    if value not in choices:
        raise OptionsError(f"{_name(key)} {value!r}: choose one of {', '.join(choices)}")
    return str(value)


def _text(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise OptionsError(f"{_name(key)} {value!r}: give a non-empty name")
    return value


def _path(raw: Mapping[str, Any], key: str) -> Path | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str | Path) or not str(value):
        raise OptionsError(f"{_name(key)} {value!r}: give a file path")
    return Path(value)
