#!/usr/bin/env python3
"""Make sure the Debian packages listed in ``.ci/system-packages.toml`` are installed.

``make test`` and ``make demo`` run this first, and so does ``.ci/run``: the README's two commands
set up a fresh Debian machine by themselves. Contract:

- every package present (its ``file`` exists, or its ``command`` is on PATH at ``min-version`` or
  later): print nothing, exit 0. No network and no package manager; only a ``min-version`` entry
  runs one program (``node --version``).
- some missing, running as root where ``apt-get`` exists: ``apt-get update`` once, then a
  non-interactive ``apt-get install -y --no-install-recommends`` of the missing packages only;
  exit 0 when every one of them is then present, 1 when apt-get fails or a package is still
  missing.
- some missing and nothing can install them (not root, no apt-get, or ``--check``): one message
  naming the packages, what each is for, and the command that installs them; exit 2.

Run it with the system's Python (3.11 or later, for ``tomllib``): it runs before ``.venv`` exists.

Discussion: the proof that a package is present is the file forkshare uses, not ``dpkg -s``. A
path check costs microseconds where dpkg costs tens of milliseconds per package, and it accepts a
working program that did not come from Debian (NodeSource's ``node``, a hand-built nginx) instead
of reinstalling over it; the price is that a half-removed package whose file survived counts as
present, which is what forkshare needs anyway.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LIST = Path(__file__).with_name("system-packages.toml")
APT_UPDATE_TIMEOUT = 600.0
"""Seconds for ``apt-get update`` (every configured index is fetched)."""
APT_INSTALL_TIMEOUT = 1800.0
"""Seconds for the install: chromium alone is over 100 MB."""
VERSION_TIMEOUT = 10.0
"""Seconds for ``COMMAND --version``."""
APT_OPTIONS = ("-y", "-qq", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300")
"""Non-interactive, only what is listed; wait (bounded) for another apt run's lock."""

EXIT_OK = 0
EXIT_INSTALL_FAILED = 1
EXIT_MISSING = 2


class PackageListError(Exception):
    """The package list is malformed: an entry without a name, a purpose or exactly one proof."""


@dataclass(frozen=True, slots=True)
class SystemPackage:
    """One Debian package forkshare uses, and how to tell that it is installed.

    Attributes:
        name: the Debian package name given to apt-get.
        purpose: what forkshare uses it for (shown when it is missing).
        file: an absolute path whose existence proves the package installed, or "".
        command: a program looked up on PATH, or "" (exactly one of file and command is set).
        min_version: with ``command``, the least major version ``command --version`` may report.
    """

    name: str
    purpose: str
    file: str = ""
    command: str = ""
    min_version: int = 0

    def is_present(self) -> bool:
        """Whether the proof holds: the file exists, or the command runs at min_version or later."""
        if self.file:
            return Path(self.file).exists()
        program = shutil.which(self.command)
        if program is None:
            return False
        return self.min_version == 0 or major_version(program) >= self.min_version


def major_version(program: str) -> int:
    """The first number in ``program --version`` ("v20.20.2" → 20); 0 when it fails to run."""
    try:
        result = subprocess.run(
            [program, "--version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired):
        return 0
    match = re.search(r"\d+", result.stdout + result.stderr)
    return int(match.group()) if result.returncode == 0 and match else 0


def read_packages(path: Path) -> list[SystemPackage]:
    """The ``[[package]]`` entries of the TOML list at ``path``, in order.

    Raises:
        PackageListError: an entry lacks a name or purpose, or has not exactly one proof.
    """
    with path.open("rb") as stream:
        entries = tomllib.load(stream).get("package", [])
    return [_package(entry, path) for entry in entries]


def _package(entry: dict[str, object], path: Path) -> SystemPackage:
    package = SystemPackage(
        name=str(entry.get("name", "")),
        purpose=str(entry.get("for", "")),
        file=str(entry.get("file", "")),
        command=str(entry.get("command", "")),
        min_version=int(str(entry.get("min-version", 0))),
    )
    if not package.name or not package.purpose or bool(package.file) == bool(package.command):
        raise PackageListError(
            f"{path}: entry {entry!r} needs a name, a 'for' and exactly one of 'file' or 'command'"
        )
    return package


def can_install() -> bool:
    """Whether this process may install Debian packages itself: root, with apt-get on PATH."""
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def install(packages: Sequence[SystemPackage]) -> int:
    """``apt-get update`` once, then install exactly ``packages``; the exit code (0, 1)."""
    names = [package.name for package in packages]
    print(f"Installing missing Debian packages: {' '.join(names)}", file=sys.stderr, flush=True)
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = [
        (["apt-get", "update", "-qq"], APT_UPDATE_TIMEOUT),
        (["apt-get", "install", *APT_OPTIONS, *names], APT_INSTALL_TIMEOUT),
    ]
    for argv, timeout in steps:
        try:
            subprocess.run(
                argv, check=True, env=environment, stdin=subprocess.DEVNULL, timeout=timeout
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            print(f"{' '.join(argv[:2])} failed: {error}", file=sys.stderr)
            return EXIT_INSTALL_FAILED
    return _report_still_missing(packages)


def _report_still_missing(packages: Sequence[SystemPackage]) -> int:
    still_missing = [package for package in packages if not package.is_present()]
    for package in still_missing:
        proof = package.file or f"{package.command} (version {package.min_version} or later)"
        print(f"apt-get installed {package.name}, but {proof} is still missing", file=sys.stderr)
    return EXIT_INSTALL_FAILED if still_missing else EXIT_OK


def missing_message(packages: Sequence[SystemPackage]) -> str:
    """One message: the missing packages, what each is for, and the command that installs them."""
    lines = ["forkshare needs Debian packages that are not installed:"]
    lines += [f"  {package.name}: {package.purpose}" for package in packages]
    names = " ".join(package.name for package in packages)
    sudo = "" if os.geteuid() == 0 else "sudo "
    lines.append(f"Install them with: {sudo}apt-get install --no-install-recommends {names}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Check the list, install what is missing when possible; the exit code (0, 1, 2)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--list", type=Path, default=DEFAULT_LIST, help="the TOML package list")
    parser.add_argument("--check", action="store_true", help="never install: report and exit 2")
    options = parser.parse_args(argv)
    try:
        packages = read_packages(options.list)
    except (OSError, tomllib.TOMLDecodeError, PackageListError, ValueError) as error:
        print(f"cannot read the package list: {error}", file=sys.stderr)
        return EXIT_MISSING
    missing = [package for package in packages if not package.is_present()]
    if not missing:
        return EXIT_OK
    if options.check or not can_install():
        print(missing_message(missing), file=sys.stderr)
        return EXIT_MISSING
    return install(missing)


if __name__ == "__main__":
    sys.exit(main())
