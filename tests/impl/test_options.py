"""Options: defaults, the config file, and usage errors that name their fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from forkshare.impl.errors import OptionsError
from forkshare.impl.options import load_options, parse_address


def test_defaults_follow_nginx() -> None:
    options = load_options([])
    assert [str(address) for address in options.listen] == ["127.0.0.1:8080"]
    assert options.mode == "exclusive"
    assert options.backlog == 511
    assert options.worker_connections == 512
    assert options.workers == (os.cpu_count() or 1)


def test_blocking_mode_is_a_synchronous_worker() -> None:
    assert load_options(["--mode", "blocking"]).worker_connections == 1


def test_the_command_line_overrides_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "f.toml"
    config.write_text('listen = "127.0.0.1:9000"\nworkers = 3\nmode = "mutex"\n')
    options = load_options(["--config", str(config), "--workers", "5"])
    assert options.workers == 5
    assert options.mode == "mutex"
    assert [str(address) for address in options.listen] == ["127.0.0.1:9000"]


def test_addresses_are_parsed_with_ipv6_in_brackets() -> None:
    assert str(parse_address("[::1]:8080")) == "[::1]:8080"
    assert str(parse_address("8080")) == "0.0.0.0:8080"
    assert str(parse_address("localhost:81")) == "127.0.0.1:81"


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["--workers", "0"], "--workers 0"),
        (["--listen", "127.0.0.1:0"], "1 to 65535"),
        (["--listen", "::1:80"], "brackets"),
        (["--mode", "blocking", "--worker-connections", "8"], "drop --worker-connections"),
        (["--mode", "blocking", "--listen", "1.2.3.4:1", "--listen", "1.2.3.4:2"], "one --listen"),
        (["--user", "no-such-user-here"], "no such user"),
        (["--graceful-timeout", "0"], "above 0"),
        (["--listen", "127.0.0.1:80", "--listen", "127.0.0.1:80"], "twice"),
    ],
)
def test_bad_options_are_usage_errors_naming_the_fix(argv: list[str], names: str) -> None:
    with pytest.raises(OptionsError, match=names) as caught:
        load_options(argv)
    assert caught.value.exit_code == 2


def test_an_unknown_config_key_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "f.toml"
    config.write_text("wrokers = 2\n")
    with pytest.raises(OptionsError, match="unknown key 'wrokers'"):
        load_options(["--config", str(config)])
