"""From a profile to a command line: placeholders filled in, generated files written.

``kind = "nginx"`` writes ``nginx.conf`` into the scratch directory (a foreground master, every
file inside the directory, ``accept_mutex`` and ``reuseport`` as the profile says) and runs
``/usr/sbin/nginx -p DIR -c DIR/nginx.conf``. ``kind = "gunicorn"`` writes a one-line WSGI app and
runs ``python -m gunicorn`` from the verifier's interpreter. ``kind = "command"`` fills the
template's placeholders: ``{port}``, ``{workers}``, ``{dir}``, ``{python}``, ``{forkshare}``.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

from forkshare.conformance.verify.errors import ProfileError
from forkshare.conformance.verify.profile import Profile

NGINX = "/usr/sbin/nginx"

WSGI_APP = """def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\\n"]
"""


def command_line(profile: Profile, port: int, workers: int, directory: Path) -> list[str]:
    """The target's argv, after writing whatever file its kind needs into ``directory``.

    Raises:
        ProfileError: a placeholder the template uses is unknown, or nginx is missing.
    """
    if profile.kind == "nginx":
        return _nginx(profile, port, workers, directory)
    if profile.kind == "gunicorn":
        return _gunicorn(profile, port, workers, directory)
    return shlex.split(fill(profile.command, port, workers, directory))


def fill(template: str, port: int, workers: int, directory: Path) -> str:
    """``template`` with its placeholders replaced.

    Raises:
        ProfileError: the template names a placeholder that does not exist.
    """
    forkshare = shutil.which("forkshare") or str(Path(sys.executable).with_name("forkshare"))
    try:
        return template.format(
            port=port, workers=workers, dir=directory, python=sys.executable, forkshare=forkshare
        )
    except (KeyError, IndexError) as error:
        raise ProfileError(
            f"unknown placeholder {error} in {template!r}: use {{port}}, {{workers}}, {{dir}}, "
            "{python} or {forkshare}"
        ) from None


def _nginx(profile: Profile, port: int, workers: int, directory: Path) -> list[str]:
    if shutil.which(NGINX) is None:
        raise ProfileError(f"{NGINX} is missing: apt-get install nginx-light")
    mutex = "on" if profile.accept_mutex else "off"
    reuseport = " reuseport" if profile.reuseport else ""
    conf = directory / "nginx.conf"
    conf.write_text(
        f"""daemon off;
master_process on;
worker_processes {workers};
pid {directory}/nginx.pid;
error_log {directory}/error.log;
events {{ worker_connections {max(profile.worker_connections, 16)}; accept_mutex {mutex}; }}
http {{
    access_log off;
    client_body_temp_path {directory}/body;
    server {{
        listen 127.0.0.1:{port}{reuseport};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""
    )
    return [NGINX, "-p", str(directory), "-c", str(conf), "-e", f"{directory}/error.log"]


def _gunicorn(profile: Profile, port: int, workers: int, directory: Path) -> list[str]:
    (directory / "app.py").write_text(WSGI_APP)
    argv = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    if profile.reuse_port:
        argv.append("--reuse-port")
    return [*argv, "--graceful-timeout", "2", "--chdir", str(directory), "app:app"]


def trace_path(profile: Profile, port: int, workers: int, directory: Path) -> Path | None:
    """Where the target writes its event trace, if its profile says it writes one."""
    return Path(fill(profile.trace, port, workers, directory)) if profile.trace else None
