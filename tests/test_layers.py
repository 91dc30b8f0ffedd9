"""Imports point inward, for every layer and every room of the engine.

core is pure and imports only core; the engine imports core (a store only through
core's ports); a store backend imports core and the store's shared modules, never
the other backend (only ``open_store`` chooses between them); export and testweb
stand on core; the edges (the CLI, the service, the queue workers, the Python API)
may use everything but testweb. Inside the engine, its rooms stack: the engine's own
root modules, then pages, fetch, frontier, fleet, run, each importing only itself
and the rooms before it.
"""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Iterator

import pytest

import shoal

SRC = pathlib.Path(shoal.__file__).parent

EDGES = frozenset({"cli", "service", "queue", "api"})
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset({"core"}),
    "engine": frozenset({"core", "engine"}),
    "store": frozenset({"core", "store"}),
    "export": frozenset({"core", "export"}),
    "testweb": frozenset({"core", "testweb"}),
    **{edge: frozenset({"core", "engine", "store", "export"}) | EDGES for edge in EDGES},
}
ROOMS = ("root", "pages", "fetch", "frontier", "fleet", "run")
BACKENDS = ("sqlite", "postgres")


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("api", "_apirun", "_apispec", "__main__"):
        return "api"
    return parts[1]


def engine_room(module: str) -> str:
    parts = module.split(".")
    return parts[2] if len(parts) > 3 or (len(parts) == 3 and parts[2] in ROOMS) else "root"


def shoal_imports(path: pathlib.Path) -> Iterator[str]:
    """Every shoal module ``path`` imports, at any depth (a lazy import counts too)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        yield from (name for name in names if name.split(".")[0] == "shoal")


MODULES = sorted(SRC.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    for path in MODULES:
        assert layer(module_name(path)) in ALLOWED, path


def violation(importer: str, imported: str) -> str | None:
    """Why ``importer`` may not import ``imported``, or None when it may."""
    source, target = layer(importer), layer(imported)
    if target not in ALLOWED[source]:
        return f"{importer} ({source}) imports {imported} ({target})"
    if source == target == "engine":
        mine, theirs = engine_room(importer), engine_room(imported)
        if ROOMS.index(theirs) > ROOMS.index(mine):
            return f"the engine's {mine!r} room imports {imported} from the outer {theirs!r}"
    if source == target == "store" and importer != "shoal.store":  # open_store picks one
        mine = importer.split(".")[2] if importer.count(".") >= 3 else None
        theirs = imported.split(".")[2] if imported.count(".") >= 3 else None
        if theirs in BACKENDS and mine != theirs:
            return f"{importer} imports the {theirs} backend"
    return None


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_inward(path: pathlib.Path) -> None:
    importer = module_name(path)
    for imported in shoal_imports(path):
        assert violation(importer, imported) is None


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("shoal.core.urls", "shoal.engine.clock"),
        ("shoal.engine.run.job", "shoal.store.sqlite.store"),
        ("shoal.engine.fetch.pool", "shoal.engine.run.runner"),
        ("shoal.engine.pages.links", "shoal.engine.fetch.wire"),
        ("shoal.store.sqlite.store", "shoal.store.postgres.text"),
        ("shoal.store._codec", "shoal.store.sqlite.reads"),
        ("shoal.export.writers", "shoal.cli.progress"),
        ("shoal.testweb.site", "shoal.engine.clock"),
        ("shoal.cli.demo", "shoal.testweb.site"),
    ],
)
def test_an_outward_import_is_caught(importer: str, imported: str) -> None:
    assert violation(importer, imported) is not None


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("shoal.engine.run.runner", "shoal.engine.fetch.pool"),
        ("shoal.engine.fetch.child", "shoal.engine.resources"),
        ("shoal.store.sqlite.store", "shoal.store._codec"),
        ("shoal.service._app", "shoal.engine.run.runner"),
        ("shoal", "shoal.api"),
    ],
)
def test_an_inward_import_passes(importer: str, imported: str) -> None:
    assert violation(importer, imported) is None


def test_the_engine_reaches_a_store_only_through_the_ports() -> None:
    for path in sorted((SRC / "engine").rglob("*.py")):
        for imported in shoal_imports(path):
            assert not imported.startswith("shoal.store"), f"{path.name} imports {imported}"


def test_the_engine_rooms_and_store_backends_are_packages() -> None:
    for room in ROOMS[1:]:
        assert (SRC / "engine" / room / "__init__.py").is_file(), room
    names = [
        {p.name for p in (SRC / "store" / backend).glob("*.py") if p.name != "__init__.py"}
        for backend in BACKENDS
    ]
    # The two backends name their modules alike.
    alike = {"store.py", "connections.py", "schema.py", "frontier.py", "writes.py", "reads.py"}
    assert alike <= names[0] & names[1]
