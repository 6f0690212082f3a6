"""The server benchmark: requests/s with wrk against forkshare, nginx and gunicorn, as ratios.

Every server runs with 2 workers on 127.0.0.1, started by the verifier's launcher
(:func:`forkshare.conformance.observe.launch.launch`: its own process group, killed by group in a
``finally``); every wait is bounded. Two loads per server: keep-alive (wrk's default) and
``Connection: close`` (a new TCP connection per request, so accept and socket sharing dominate).
gunicorn's sync worker closes after every response whatever the client asks, so its two figures
measure the same thing. The figures are printed next to their ratio to gunicorn, the reference the
issue's targets are stated against (forkshare ≥ 4× with keep-alive, ≥ 2× with ``Connection:
close``). Servers whose binary is missing are reported as skipped, never silently dropped.

Run alone with ``python -m forkshare.serverbench [SECONDS] [MODE...]``.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from rich.console import Console
from rich.table import Table

from forkshare.conformance.observe.deadline import wait_until
from forkshare.conformance.observe.launch import RunningTarget, free_port, launch
from forkshare.errors import ForkshareError

WRK: Final = "/usr/bin/wrk"
NGINX: Final = "/usr/sbin/nginx"
WORKERS: Final = 2
WRK_THREADS: Final = 2
WRK_CONNECTIONS: Final = 64
START_TIMEOUT: Final = 10.0

GUNICORN_APP: Final = """\
def app(environ, start_response):
    body = b"ok\\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [body]
"""

NGINX_CONF: Final = """\
worker_processes {workers};
daemon off;
master_process on;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


@dataclass(frozen=True, slots=True)
class ServerResult:
    """One server's figures (requests/s), or why it was skipped."""

    server: str
    keep_alive: float | None
    close: float | None
    note: str = ""


def run_server_bench(
    duration_s: float = 5.0, modes: Sequence[str] = ("exclusive",)
) -> list[ServerResult]:
    """Measure forkshare (one row per mode), nginx and gunicorn with wrk, 2 workers each.

    Args:
        duration_s: seconds of each wrk run (two runs per server).
        modes: forkshare sharing modes to measure, one row each.

    Returns:
        One result per server, gunicorn last; a missing binary gives a row with a note.
    """
    if not Path(WRK).exists():
        note = f"{WRK} not found: apt-get install wrk"
        return [ServerResult(name, None, None, note) for name in ("forkshare", "nginx", "gunicorn")]
    results: list[ServerResult] = []
    with tempfile.TemporaryDirectory(prefix="forkshare-bench-") as scratch:
        root = Path(scratch)
        for mode in modes:
            command = _forkshare_command(mode)
            results.append(_measure(f"forkshare ({mode})", command, duration_s, root))
        results.append(_measure_nginx(root, duration_s))
        results.append(_measure_gunicorn(root, duration_s))
    return results


def _forkshare_command(mode: str) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [
            *(sys.executable, "-m", "forkshare.impl", "--workers", str(WORKERS), "--mode", mode),
            *("--listen", f"127.0.0.1:{port}", "--log-level", "warning"),
        ]

    return command


def _measure_nginx(root: Path, duration_s: float) -> ServerResult:
    if not Path(NGINX).exists():
        return ServerResult("nginx", None, None, f"{NGINX} not found: apt-get install nginx")
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (root / name).mkdir(exist_ok=True)
    conf = root / "nginx.conf"

    def command(port: int) -> list[str]:
        conf.write_text(NGINX_CONF.format(workers=WORKERS, root=root, port=port))
        return [NGINX, "-p", f"{root}/", "-c", str(conf)]

    return _measure("nginx", command, duration_s, root)


def _measure_gunicorn(root: Path, duration_s: float) -> ServerResult:
    binary = Path(sys.executable).with_name("gunicorn")
    if not binary.exists():
        found = shutil.which("gunicorn")
        if found is None:
            return ServerResult("gunicorn", None, None, "gunicorn not found: pip install gunicorn")
        binary = Path(found)
    (root / "benchapp.py").write_text(GUNICORN_APP)

    def command(port: int) -> list[str]:
        return [
            *(str(binary), "-w", str(WORKERS), "-b", f"127.0.0.1:{port}"),
            *("--chdir", str(root), "benchapp:app"),
        ]

    return _measure("gunicorn (sync)", command, duration_s, root)


def _measure(
    name: str, command: Callable[[int], list[str]], duration_s: float, root: Path
) -> ServerResult:
    """Start one server on a free port, run wrk twice against it, stop it."""
    port = free_port()
    try:
        with _serving(command(port), port, Path(tempfile.mkdtemp(prefix="server-", dir=root))):
            keep_alive = _wrk(port, duration_s, close=False)
            close = _wrk(port, duration_s, close=True)
    except (RuntimeError, ForkshareError) as error:
        return ServerResult(name, None, None, str(error))
    return ServerResult(name, keep_alive, close)


@contextlib.contextmanager
def _serving(argv: list[str], port: int, output_dir: Path) -> Iterator[None]:
    """Run ``argv`` until the block ends, once it answers a request; kill its group after.

    Raises:
        TargetFailedToStartError: it exited or never listened (its stderr is quoted).
        WaitTimedOutError: it listens but answered no request within START_TIMEOUT.
    """
    target = launch(argv, port, timeout=START_TIMEOUT, output_dir=output_dir)
    try:
        wait_until(lambda: _answers(target), START_TIMEOUT, f"{argv[0]} answers on port {port}")
        yield
    finally:
        target.group.stop(grace=3.0)


def _answers(target: RunningTarget) -> bool:
    """One request on a fresh connection gets a 200 (a worker is up, not just the listener)."""
    if not target.group.is_running():
        stderr = target.group.stderr().strip()[-200:]
        raise RuntimeError(f"exited with {target.group.process.returncode}: {stderr}")
    with (
        contextlib.suppress(OSError),
        socket.create_connection(("127.0.0.1", target.port), 0.5) as s,
    ):
        s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        return s.recv(64).startswith(b"HTTP/1.1 200")
    return False


def _wrk(port: int, duration_s: float, close: bool) -> float:
    argv = [WRK, f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{max(1, round(duration_s))}s"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://127.0.0.1:{port}/")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 30)
    match = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed: {done.stderr.strip() or done.stdout.strip()}")
    if "Non-2xx" in done.stdout:
        raise RuntimeError("wrk saw non-2xx responses")
    return float(match.group(1))


def render_server_bench(results: Sequence[ServerResult]) -> Table:
    """A rich table: req/s per load and the ratio to gunicorn's figure for the same load."""
    reference = next((r for r in results if r.server.startswith("gunicorn")), None)
    table = Table(title=f"Requests/s with wrk ({WORKERS} workers each, {WRK_CONNECTIONS} conns)")
    for column in ("server", "keep-alive", "× gunicorn", "Connection: close", "× gunicorn"):
        table.add_column(column, justify="left" if column == "server" else "right")
    table.add_column("note")
    for result in results:
        table.add_row(
            result.server,
            _figure(result.keep_alive),
            _ratio(result.keep_alive, reference.keep_alive if reference else None),
            _figure(result.close),
            _ratio(result.close, reference.close if reference else None),
            result.note,
        )
    return table


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _ratio(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return "—"
    return f"{value / reference:.1f}×"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m forkshare.serverbench [SECONDS] [MODE...]``; prints the table."""
    args = list(sys.argv[1:] if argv is None else argv)
    duration = float(args[0]) if args else 5.0
    modes = args[1:] or ["exclusive"]
    Console().print(render_server_bench(run_server_bench(duration, modes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
