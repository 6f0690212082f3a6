"""From a profile to a command line: placeholders filled in, generated files written.

Every kind of target, and what it writes into the run's scratch directory ``DIR``:

``command``
    The profile's template with its placeholders filled in: ``{port}``, ``{workers}``,
    ``{dir}``, ``{python}``, ``{forkshare}``. Nothing is written.
``nginx``
    ``nginx.conf`` (a foreground master, every file inside ``DIR``, ``accept_mutex`` and
    ``reuseport`` as the profile says); runs ``/usr/sbin/nginx -p DIR -c DIR/nginx.conf``.
``gunicorn``
    ``app.py``, a one-line WSGI app; runs ``python -m gunicorn`` from the verifier's interpreter.
``apache``
    ``apache2.conf`` from the bundled prefork template (``targets/apache2_prefork.conf``) and
    ``htdocs/index.html``; runs ``/usr/sbin/apache2 -f DIR/apache2.conf -d DIR -DFOREGROUND``.
    As root, Apache serves as ``www-data``, so ``DIR`` is made world-searchable and the page
    world-readable (every directory above ``DIR`` must be searchable already).
``node``
    ``node_cluster.js``, the bundled cluster supervisor (``targets/node_cluster.js``); runs
    ``node DIR/node_cluster.js --port P --workers N --sched rr|none`` with the ``node`` on PATH.

Discussion:
    *Bundled files are copied into the scratch directory rather than run from the package.* The
    Node supervisor could run from the installed package's path, but a package may be installed
    as a zip (no such path), and a scratch directory holding everything a run used lets a user
    re-run the printed command by hand after the verifier is gone. Generated files (nginx.conf,
    apache2.conf) are already there for the same reason.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import sys
from importlib import resources
from pathlib import Path

from forkshare.conformance.verify.errors import ProfileError
from forkshare.conformance.verify.profile import Profile

NGINX = "/usr/sbin/nginx"
GUNICORN_TIMEOUT = 4
"""gunicorn's worker timeout in the verifier's command line (its parent check runs every half)."""
APACHE = "/usr/sbin/apache2"
APACHE_MODULES = Path("/usr/lib/apache2/modules")
"""Debian's module directory; the template loads mod_mpm_prefork and two others from it."""
NODE = "node"

WSGI_APP = """def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\\n"]
"""

INDEX_HTML = "ok\n"

WORLD_READABLE = stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH
"""0644: Apache's children (www-data) read the page."""
WORLD_SEARCHABLE = WORLD_READABLE | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
"""0755: Apache's children (www-data) reach the page."""


def command_line(profile: Profile, port: int, workers: int, directory: Path) -> list[str]:
    """The target's argv, after writing whatever file its kind needs into ``directory``.

    Raises:
        ProfileError: a placeholder the template uses is unknown, or the server's program
            (nginx, apache2, node) is missing.
    """
    if profile.kind == "nginx":
        return _nginx(profile, port, workers, directory)
    if profile.kind == "gunicorn":
        return _gunicorn(profile, port, workers, directory)
    if profile.kind == "apache":
        return _apache(port, workers, directory)
    if profile.kind == "node":
        return _node(profile, port, workers, directory)
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


def bundled_target_file(name: str) -> str:
    """The text of ``targets/NAME`` from the installed package (the Apache template, the Node
    supervisor, MEASURED.md)."""
    folder = resources.files("forkshare.conformance.verify").joinpath("targets")
    return folder.joinpath(name).read_text(encoding="utf-8")


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
    # --timeout 4: a sync worker checks its parent at least every timeout/2 = 2 s (G-facts,
    # F7), which the profile's parent_death_bound allows for; stops stay well under 4 s.
    return [
        *argv,
        "--graceful-timeout",
        "2",
        "--timeout",
        str(GUNICORN_TIMEOUT),
        "--chdir",
        str(directory),
        "app:app",
    ]


def _apache(port: int, workers: int, directory: Path) -> list[str]:
    """Apache httpd prefork: the bundled template filled in, its page, its permissions.

    Raises:
        ProfileError: apache2 or its prefork module is missing, or (as root) a directory above
            ``directory`` is not searchable by the children's user.
    """
    if not Path(APACHE).exists() or not (APACHE_MODULES / "mod_mpm_prefork.so").exists():
        raise ProfileError(f"{APACHE} (with mod_mpm_prefork) is missing: apt-get install apache2")
    template = bundled_target_file("apache2_prefork.conf")
    conf = directory / "apache2.conf"
    conf.write_text(template.format(port=port, dir=directory, workers=workers))
    htdocs = directory / "htdocs"
    htdocs.mkdir(exist_ok=True)
    (htdocs / "index.html").write_text(INDEX_HTML)
    _let_apache_children_read(directory)
    return [APACHE, "-f", str(conf), "-d", str(directory), "-DFOREGROUND"]


def _let_apache_children_read(directory: Path) -> None:
    """As root, Apache's children run as ``www-data`` (the template's ``User``): they must
    reach ``htdocs/index.html`` (MEASURED.md: a 0700 scratch directory gives 403 or 500).

    Raises:
        ProfileError: a directory above ``directory`` is not searchable by others (we do not
            change permissions outside the scratch directory).
    """
    if os.geteuid() != 0:
        return  # User/Group are ignored: the children run as us
    for parent in directory.resolve().parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise ProfileError(
                f"Apache's children run as www-data and cannot reach {directory}: {parent} is "
                "not searchable by others (chmod o+x it, or use a scratch directory under /tmp)"
            )
    directory.chmod(WORLD_SEARCHABLE)
    (directory / "htdocs").chmod(WORLD_SEARCHABLE)
    (directory / "htdocs" / "index.html").chmod(WORLD_READABLE)


def _node(profile: Profile, port: int, workers: int, directory: Path) -> list[str]:
    """The bundled Node cluster supervisor, copied into ``directory`` (see Discussion).

    Raises:
        ProfileError: no ``node`` on PATH.
    """
    node = shutil.which(NODE)
    if node is None:
        raise ProfileError("node is missing from PATH: apt-get install nodejs")
    script = directory / "node_cluster.js"
    script.write_text(bundled_target_file("node_cluster.js"))
    return [
        node,
        str(script),
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--sched",
        profile.sched,
    ]


def trace_path(profile: Profile, port: int, workers: int, directory: Path) -> Path | None:
    """Where the target writes its event trace, if its profile says it writes one."""
    return Path(fill(profile.trace, port, workers, directory)) if profile.trace else None
