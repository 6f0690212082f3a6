"""The layering of ARCHITECTURE.md, enforced: who may import whom, and what the wheel contains."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB = frozenset(sys.stdlib_module_names)

# folder -> (its package, the non-stdlib top-level imports it may use, forkshare modules it may use:
# a name allows itself and everything below it)
RULES: dict[str, tuple[str, frozenset[str], frozenset[str]]] = {
    "model": ("forkshare.model", frozenset(), frozenset({"forkshare.model"})),
    "impl": (
        "forkshare.impl",
        frozenset({"setproctitle"}),
        frozenset({"forkshare.impl", "forkshare.errors"}),
    ),
    "proofs": (
        "forkshare.proofs",
        frozenset({"z3"}),
        frozenset({"forkshare.proofs", "forkshare.model", "forkshare.errors"}),
    ),
    # The verifier's three rooms: observe knows nothing of the model but the clients' outcome
    # vocabulary; strace builds on observe; verify drives the model against both.
    "conformance/observe": (
        "forkshare.conformance.observe",
        frozenset({"rich"}),
        frozenset(
            {"forkshare.conformance.observe", "forkshare.model.observation", "forkshare.errors"}
        ),
    ),
    "conformance/strace": (
        "forkshare.conformance.strace",
        frozenset({"rich"}),
        frozenset(
            {"forkshare.conformance.strace", "forkshare.conformance.observe", "forkshare.errors"}
        ),
    ),
    "conformance/verify": (
        "forkshare.conformance.verify",
        frozenset({"hypothesis", "rich"}),
        frozenset(
            {
                "forkshare.conformance.verify",
                "forkshare.conformance.observe",
                "forkshare.model",
                "forkshare.errors",
            }
        ),
    ),
}


def imports_of(path: Path, *, members: bool = False) -> list[str]:
    """Every module name imported by the file at ``path`` (absolute imports only); with
    ``members``, also ``X.Y`` for every ``from X import Y`` (Y may be a subpackage)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            if members:
                names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def is_allowed(name: str, own: frozenset[str]) -> bool:
    """``name`` is one of ``own`` or lies below one of them (``forkshare.model.state`` under
    ``forkshare.model``)."""
    return any(name == allowed or name.startswith(f"{allowed}.") for allowed in own)


@pytest.mark.parametrize("folder", sorted(RULES))
def test_each_package_imports_only_what_its_layer_allows(folder: str) -> None:
    _, third_party, own = RULES[folder]
    wrong = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for name in imports_of(path, members=True):
            top = name.split(".")[0]
            if top == "forkshare":
                allowed = is_allowed(name, own) or _is_a_parent(name, own)
            else:
                allowed = top in STDLIB or top in third_party or name == "__future__"
            if not allowed:
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == []


def _is_a_parent(name: str, own: frozenset[str]) -> bool:
    """``from forkshare.conformance.observe import procfs`` names the package first: allowed when
    the module it imports is (checked separately, as ``forkshare.conformance.observe.procfs``)."""
    return any(allowed.startswith(f"{name}.") for allowed in own)


def test_every_verifier_module_lives_in_one_of_its_rooms() -> None:
    rooms = {folder for folder in RULES if folder.startswith("conformance/")}
    homeless = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "conformance").rglob("*.py")
        if path.parent != ROOT / "conformance"
        and not any(path.is_relative_to(ROOT / room) for room in rooms)
    ]
    top_level = sorted(p.name for p in (ROOT / "conformance").glob("*.py"))
    assert homeless == []
    assert top_level == ["__init__.py"]


def test_only_the_proofs_package_touches_z3() -> None:
    users = [
        path.relative_to(ROOT)
        for folder in ("model", "impl", "conformance", "cli")
        for path in (ROOT / folder).rglob("*.py")
        if any(name.split(".")[0] == "z3" for name in imports_of(path))
    ]
    assert users == []


def test_no_module_imports_a_bare_folder_name() -> None:
    bare = {"model", "impl", "proofs", "conformance", "cli"}
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for folder in (*RULES, "cli", "tests")
        for path in (ROOT / folder).rglob("*.py")
        for name in imports_of(path)
        if name.split(".")[0] in bare
    ]
    assert offenders == []


def test_the_dispatcher_imports_no_subpackage_at_start_up() -> None:
    names = imports_of(ROOT / "cli" / "cli.py")
    assert [n for n in names if n.startswith("forkshare.") and n != "forkshare.errors"] == []


@pytest.mark.slow
def test_the_wheel_contains_every_package(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        timeout=180,
    )
    (wheel,) = tmp_path.glob("forkshare-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for package in ("forkshare", "forkshare.conformance", *(rule[0] for rule in RULES.values())):
        assert f"{package.replace('.', '/')}/__init__.py" in names, package
    assert "forkshare/conformance/verify/profiles/__init__.py" in names
    assert "forkshare/conformance/verify/profiles/nginx.toml" in names
    for bundled in ("apache2_prefork.conf", "node_cluster.js", "MEASURED.md"):
        assert f"forkshare/conformance/verify/targets/{bundled}" in names, bundled
    tops = {n.split("/")[0] for n in names if not n.startswith("forkshare-")}
    assert tops == {"forkshare"}, "the wheel must install nothing but the forkshare namespace"
