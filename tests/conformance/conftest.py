"""Fixtures that start real servers for the observer's tests: the tiny prefork server in each
sharing mode, and the Debian nginx. Every server runs in its own process group (through
:func:`~forkshare.conformance.observe.launch.launch`), which teardown kills; every wait is bounded."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from forkshare.conformance.observe.launch import RunningTarget, free_port, launch

TINY_PREFORK = Path(__file__).parent / "tiny_prefork.py"
NGINX = "/usr/sbin/nginx"

StartTiny = Callable[[str, int], RunningTarget]
Command = Callable[[int], list[str]]  # port → the server's command line


@pytest.fixture
def start_tiny(tmp_path: Path) -> Iterator[StartTiny]:
    """Start ``tiny_prefork.py MODE WORKERS`` on a free port; returns it with its workers idle."""
    started: list[RunningTarget] = []

    def start(mode: str, workers: int = 2) -> RunningTarget:
        port = free_port()
        out = tmp_path / f"tiny-{len(started)}"
        out.mkdir()
        argv = [sys.executable, str(TINY_PREFORK), mode, str(workers), str(port)]
        target = launch(argv, port, output_dir=out)
        started.append(target)
        target.wait_for_workers(workers)
        return target

    yield start
    for target in started:
        target.group.stop(grace=1.0)


def require_package(present: bool, package: str, needed_by: str) -> None:
    """Skip a test whose Debian ``package`` is missing on a developer's machine; in CI (``CI``
    set, as ``.ci/run`` does) fail instead, since CI installs every package of
    ``.ci/system-packages.toml``."""
    if present:
        return
    message = f"{needed_by} needs {package}: apt-get install {package}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI installs it: .ci/system-packages.toml)")
    pytest.skip(message)


def nginx_config(directory: Path, port: int) -> Path:
    """An nginx.conf for a foreground master with 2 workers, every file inside ``directory``."""
    conf = directory / "nginx.conf"
    conf.write_text(
        f"""daemon off;
master_process on;
worker_processes 2;
pid {directory}/nginx.pid;
error_log {directory}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {directory}/body;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""
    )
    return conf


def nginx_argv(directory: Path, port: int) -> list[str]:
    """The nginx command line for :func:`nginx_config`; fails the test when nginx is missing."""
    if shutil.which(NGINX) is None:
        pytest.fail(f"{NGINX} is missing: apt-get install nginx-light (CI installs it)")
    conf = nginx_config(directory, port)
    return [NGINX, "-c", str(conf), "-p", str(directory), "-e", f"{directory}/error.log"]


@pytest.fixture
def nginx_command(tmp_path: Path) -> Command:
    """port → the command line of an nginx (master + 2 workers) on 127.0.0.1:port."""
    return lambda port: nginx_argv(tmp_path, port)


@pytest.fixture
def tiny_command() -> Callable[[str], Command]:
    """mode → port → the command line of the tiny prefork server with 2 workers."""
    return lambda mode: lambda port: [sys.executable, str(TINY_PREFORK), mode, "2", str(port)]


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[RunningTarget]:
    """A running nginx (master + 2 workers) on 127.0.0.1, its workers idle."""
    port = free_port()
    target = launch(nginx_argv(tmp_path, port), port, output_dir=tmp_path)
    try:
        target.wait_for_workers(2)
        yield target
    finally:
        target.group.stop(grace=2.0)
