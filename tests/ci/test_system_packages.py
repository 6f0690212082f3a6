"""``.ci/ensure_system_packages.py``: the set-up step that ``make test`` and ``make demo`` run first.

The install path itself (``apt-get update`` and ``install``) needs the network and root; it is shown
by hand on a machine with a package removed (issue 12), not here. These tests run the script for
real with ``--check`` (never install) on the project's list and on small lists of their own.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / ".ci" / "ensure_system_packages.py"


def ensure(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run the set-up step with ``--check`` and ``argv``; bounded in time."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--check", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )


def write_list(path: Path, entries: str) -> Path:
    path.write_text(entries)
    return path


def test_every_listed_package_is_present_once_the_set_up_step_ran() -> None:
    result = ensure()
    assert (result.returncode, result.stderr) == (0, "")


def test_a_missing_package_is_named_with_its_purpose_and_the_command_that_installs_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "present").touch()
    listing = write_list(
        tmp_path / "packages.toml",
        f"""
[[package]]
name = "forkshare-present"
for = "already here"
file = "{tmp_path / "present"}"

[[package]]
name = "forkshare-absent"
for = "what the absent one is for"
file = "{tmp_path / "absent"}"
""",
    )
    result = ensure("--list", str(listing))
    assert result.returncode == 2
    assert "forkshare-absent: what the absent one is for" in result.stderr
    assert "apt-get install --no-install-recommends forkshare-absent\n" in result.stderr
    assert "forkshare-present" not in result.stderr


def test_a_program_older_than_its_min_version_counts_as_missing(tmp_path: Path) -> None:
    entry = (
        '[[package]]\nname = "{name}"\nfor = "x"\ncommand = "{python}"\nmin-version = {version}\n'
    )
    old_enough = entry.format(name="python-3", python=sys.executable, version=3)
    too_old = entry.format(name="python-99", python=sys.executable, version=99)
    result = ensure("--list", str(write_list(tmp_path / "p.toml", old_enough + too_old)))
    assert result.returncode == 2
    assert "python-99" in result.stderr
    assert "python-3" not in result.stderr


def test_an_entry_with_two_proofs_is_an_error_not_a_silent_pass(tmp_path: Path) -> None:
    listing = write_list(
        tmp_path / "p.toml",
        '[[package]]\nname = "both"\nfor = "x"\nfile = "/"\ncommand = "sh"\n',
    )
    result = ensure("--list", str(listing))
    assert result.returncode == 2
    assert "exactly one of 'file' or 'command'" in result.stderr
